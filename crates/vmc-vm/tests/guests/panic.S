/*
 * Test guest: prints a Linux-style panic line on COM1 and resets without reporting a
 * workload status, like a kernel booted with panic=-1 reboot=k does after a panic.
 */
	.code64
	.globl _start
_start:
	lea	message(%rip), %rsi
	mov	$0x3f8, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	outb	%al, %dx
	jmp	1b
2:	mov	$0x64, %dx
	mov	$0xfe, %al
	outb	%al, %dx
3:	hlt
	jmp	3b

	.section .rodata
message:	.asciz "[    1.234] Kernel panic - not syncing: VFS: Unable to mount root fs\n[    1.235] Rebooting in 1 seconds..\n"
