/*
 * Test guest that runs until the host tells it to end: reports "workload exec" (the VMM then
 * starts passing host input), raises RTS on COM2 and polls COM2's line status until a byte
 * arrives (the VMM's signal thread writes a forwarded signal's number there), reports that
 * byte as the workload status, then resets through the i8042.
 */
	.code64
	.globl _start
_start:
	mov	$0x600, %dx
	mov	$2, %al
	outb	%al, %dx			/* milestone: workload exec */
	mov	$0x2fc, %dx
	mov	$0x0b, %al
	outb	%al, %dx			/* COM2 MCR: DTR | RTS | OUT2 */
	mov	$0x2fd, %dx
1:	inb	%dx, %al			/* COM2 LSR */
	test	$1, %al
	jz	1b				/* until data is ready */
	mov	$0x2f8, %dx
	inb	%dx, %al			/* the byte */
	movzbl	%al, %eax
	mov	$0x604, %dx
	outl	%eax, %dx			/* status: that byte */
	mov	$0x64, %dx
	mov	$0xfe, %al
	outb	%al, %dx			/* i8042: pulse reset line */
2:	hlt
	jmp	2b
