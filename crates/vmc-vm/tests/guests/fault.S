/*
 * Test guest: raises an exception (int3) with no usable IDT. Full KVM: #BP → #GP → double
 * fault → triple fault (KVM_EXIT_SHUTDOWN). A KVM that cannot deliver exceptions (this
 * repository's nested PVM host): KVM_EXIT_INTERNAL_ERROR at the int3. Either way the VMM
 * must stop with an error naming the guest RIP, never hang.
 */
	.code64
	.globl _start
_start:
	int3
1:	hlt
	jmp	1b
