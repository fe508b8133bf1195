/*
 * Test guest: reads the first virtio-mmio device's identification registers through real
 * MMIO exits and reports them over COM1, then ends the way vmc-init does.
 *
 * The boot page tables map only the first 1 GiB, so the guest first maps 3..4 GiB (where the
 * virtio window at 0xd0000000 is) with a page directory of its own at 1 MiB.
 *
 *   "magic 0x<hex>\n"      MagicValue (0x000), "virt" = 0x74726976
 *   "version 0x<hex>\n"    Version (0x004)
 *   "device 0x<hex>\n"     DeviceID (0x008)
 *   "capacity 0x<hex>\n"   the config space's first 8 bytes (0x100, one 64-bit read)
 *   "status 0x<hex>\n"     Status (0x070) after writing ACKNOWLEDGE (1) to it
 *   "cmdline <text>\n"     the command line (where the device's parameter must be)
 *   then status 0 (outl to 0x604), milestone 3, i8042 reset.
 */
	.code64
	.section .text
	.globl _start
_start:
	mov	%rsi, %rbx			/* boot_params */

	/* Page directory at 0x100000: 512 x 2 MiB pages from 3 GiB; PDPT entry 3 points at it. */
	mov	$0x100000, %rdi
	movabs	$0xc0000083, %rax		/* 3 GiB | present | writable | 2 MiB page */
	mov	$512, %ecx
1:	mov	%rax, (%rdi)
	add	$0x200000, %rax
	add	$8, %rdi
	dec	%ecx
	jnz	1b
	movq	$0x100003, 0xa018		/* PDPT[3] = page directory | present | writable */
	mov	%cr3, %rax
	mov	%rax, %cr3			/* flush the TLB */

	mov	$0xd0000000, %r14d		/* the first virtio-mmio device */
	lea	msg_magic(%rip), %rsi
	call	puts
	mov	0x0(%r14), %eax
	call	puthex
	lea	msg_version(%rip), %rsi
	call	puts
	mov	0x4(%r14), %eax
	call	puthex
	lea	msg_device(%rip), %rsi
	call	puts
	mov	0x8(%r14), %eax
	call	puthex
	lea	msg_capacity(%rip), %rsi
	call	puts
	mov	0x100(%r14), %rax
	call	puthex
	movl	$1, 0x70(%r14)
	lea	msg_status(%rip), %rsi
	call	puts
	mov	0x70(%r14), %eax
	call	puthex
	lea	msg_cmdline(%rip), %rsi
	call	puts
	mov	0x228(%rbx), %esi		/* hdr.cmd_line_ptr */
	call	puts
	mov	$'\n', %al
	call	putc

	mov	$0x604, %dx
	xor	%eax, %eax
	outl	%eax, %dx			/* status: exited 0 */
	mov	$0x600, %dx
	mov	$3, %al
	outb	%al, %dx			/* milestone: workload exited */
	mov	$0x64, %dx
	mov	$0xfe, %al
	outb	%al, %dx			/* i8042: pulse reset line */
halt:	hlt
	jmp	halt

	.include "report.inc"

	.section .rodata
msg_magic:	.asciz "magic "
msg_version:	.asciz "version "
msg_device:	.asciz "device "
msg_capacity:	.asciz "capacity "
msg_status:	.asciz "status "
msg_cmdline:	.asciz "cmdline "
