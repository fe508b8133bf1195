/*
 * Test guest: boots like a Linux kernel (64-bit entry, RSI = boot_params) and reports what
 * the VMM gave it over COM1, then ends the way vmc-init does.
 *
 *   "e820 total 0x<hex>\n"   sum of all boot_params e820 entry sizes
 *   "e820 ram 0x<hex>\n"     sum of the usable (type 1) ones
 *   "cmdline <text>\n"       the NUL-terminated command line at boot_params.hdr.cmd_line_ptr
 *   milestones 1, 2 (port 0x600), status 42 (outl to 0x604), milestone 3, i8042 reset.
 */
	.code64
	.section .text
	.globl _start
_start:
	mov	%rsi, %rbx			/* boot_params */
	mov	$0x600, %dx
	mov	$1, %al
	outb	%al, %dx			/* milestone: init started */

	/* Sum the e820 table: entries at 0x2d0 (20 bytes each), count at 0x1e8. */
	movzbl	0x1e8(%rbx), %ecx
	lea	0x2d0(%rbx), %rdi
	xor	%r12, %r12			/* total */
	xor	%r13, %r13			/* usable RAM */
1:	test	%ecx, %ecx
	jz	2f
	mov	8(%rdi), %rax
	add	%rax, %r12
	cmpl	$1, 16(%rdi)
	jne	3f
	add	%rax, %r13
3:	add	$20, %rdi
	dec	%ecx
	jmp	1b
2:
	lea	msg_total(%rip), %rsi
	call	puts
	mov	%r12, %rax
	call	puthex
	lea	msg_ram(%rip), %rsi
	call	puts
	mov	%r13, %rax
	call	puthex
	lea	msg_cmdline(%rip), %rsi
	call	puts
	mov	0x228(%rbx), %esi		/* hdr.cmd_line_ptr */
	call	puts
	mov	$'\n', %al
	call	putc

	mov	$0x600, %dx
	mov	$2, %al
	outb	%al, %dx			/* milestone: workload exec */
	mov	$0x604, %dx
	mov	$42, %eax
	outl	%eax, %dx			/* status: exited 42 */
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
msg_total:	.asciz "e820 total "
msg_ram:	.asciz "e820 ram "
msg_cmdline:	.asciz "cmdline "
