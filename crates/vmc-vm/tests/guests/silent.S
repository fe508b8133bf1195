/*
 * Test guest that never reports: halts forever with interrupts off, as a kernel that hangs
 * before its init would. Only the VMM's boot watchdog ends it.
 */
	.code64
	.globl _start
_start:
	cli
1:	hlt
	jmp	1b
