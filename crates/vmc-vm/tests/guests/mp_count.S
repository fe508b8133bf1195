/*
 * Test guest for multi-vCPU VMs: finds the MP floating pointer ("_MP_") at the EBDA
 * (0x9fc00), follows it to the configuration table and counts its processor entries
 * (type 0, 20 bytes; all other entries are 8 bytes). Reports the count as the workload
 * status, then resets. The other vCPUs stay parked waiting for INIT/SIPI, so the VMM must
 * stop them when vCPU 0 resets.
 */
	.code64
	.globl _start
_start:
	mov	$0x9fc00, %rsi
	mov	$0xff, %eax			/* status 0xff: no MP table */
	cmpl	$0x5f504d5f, (%rsi)		/* "_MP_" */
	jne	report
	mov	4(%rsi), %esi			/* configuration table */
	cmpl	$0x504d4350, (%rsi)		/* "PCMP" */
	jne	report
	movzwl	34(%rsi), %ecx			/* entry count */
	lea	44(%rsi), %rdi
	xor	%eax, %eax
1:	test	%ecx, %ecx
	jz	report
	cmpb	$0, (%rdi)
	jne	2f
	inc	%eax
	add	$20, %rdi
	jmp	3f
2:	add	$8, %rdi
3:	dec	%ecx
	jmp	1b
report:
	mov	$0x604, %dx
	outl	%eax, %dx
	mov	$0x64, %dx
	mov	$0xfe, %al
	outb	%al, %dx
4:	hlt
	jmp	4b
