/*
 * Test guest: writes to guest physical 128 MiB (identity-mapped by the boot page tables),
 * which is beyond a 64 MiB VM's RAM: the VMM must stop with a clear error naming the address.
 */
	.code64
	.globl _start
_start:
	movl	$0xdead, 0x8000000
1:	hlt
	jmp	1b
