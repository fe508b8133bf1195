/*
 * Test guest that runs until the host tells it to end: reports "workload exec" (the VMM then
 * lets its signal thread forward signals), polls the byte at guest physical address 0x300000
 * (zero in fresh guest RAM) until the host writes a non-zero value there through its mapping
 * of guest RAM, reports that byte as the workload status, then resets through the i8042.
 */
	.code64
	.globl _start
_start:
	mov	$0x600, %dx
	mov	$2, %al
	outb	%al, %dx			/* milestone: workload exec */
	mov	$0x300000, %rbx
1:	pause
	movzbl	(%rbx), %eax			/* the byte the host writes */
	test	%eax, %eax
	jz	1b				/* until it is set */
	mov	$0x604, %dx
	outl	%eax, %dx			/* status: that byte */
	mov	$0x64, %dx
	mov	$0xfe, %al
	outb	%al, %dx			/* i8042: pulse reset line */
2:	hlt
	jmp	2b
