/*
 * A tiny multiboot guest for KVM tests (qemu-oc).
 * KVM on the test machine cannot boot Linux, but runs a few instructions.
 *
 *   -DTINY_HALT   print "HALT" on the debug console (port 0xe9), cli; hlt
 *   -DTINY_SPIN   print "SPIN", then loop forever
 *   -DTINY_CPUID  print "CPUID 40000001 EAX=xxxxxxxx" and halt
 *   -DTINY_YIELD  print "YIELDING", ask KVM 1000 times to yield to vCPU 1
 *                 (the PV sched yield hypercall, which a guest makes when
 *                 the vCPU it waits for is preempted), print "YIELDED",
 *                 and halt
 *
 * Build: gcc -m32 -nostdlib -ffreestanding -static -Wl,-Ttext=0x100000
 *        -Wl,--build-id=none -DTINY_... tiny.S
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0

    .text
    .globl _start
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

/* print the NUL-terminated string at %esi on port 0xe9 */
puts:
    movw $0xe9, %dx
1:  lodsb
    testb %al, %al
    jz 2f
    outb %al, %dx
    jmp 1b
2:  ret

_start:
#if defined(TINY_HALT)
    movl $msg_halt, %esi
    call puts
    cli
3:  hlt
    jmp 3b
#elif defined(TINY_SPIN)
    movl $msg_spin, %esi
    call puts
4:  jmp 4b
#elif defined(TINY_CPUID)
    movl $0x40000001, %eax
    xorl %ecx, %ecx
    cpuid
    movl %eax, %ebx
    movl $msg_cpuid, %esi
    call puts
    movl $8, %ecx           /* 8 hex digits of %ebx, high first */
5:  roll $4, %ebx
    movl %ebx, %eax
    andl $0xf, %eax
    movb hex(%eax), %al
    movw $0xe9, %dx
    outb %al, %dx
    loop 5b
    movb $'\n', %al
    outb %al, %dx
    cli
6:  hlt
    jmp 6b
#elif defined(TINY_YIELD)
    movl $msg_yielding, %esi
    call puts
    movl $1000, %esi
7:  movl $11, %eax          /* KVM_HC_SCHED_YIELD */
    movl $1, %ebx           /* to APIC ID 1 (never started: not ready) */
    vmcall
    decl %esi
    jnz 7b
    movl $msg_yield, %esi
    call puts
    cli
8:  hlt
    jmp 8b
#else
#error define TINY_HALT, TINY_SPIN, TINY_CPUID or TINY_YIELD
#endif

msg_halt:   .asciz "HALT\n"
msg_spin:   .asciz "SPIN\n"
msg_cpuid:  .asciz "CPUID 40000001 EAX="
msg_yielding: .asciz "YIELDING\n"
msg_yield:  .asciz "YIELDED\n"
hex:        .ascii "0123456789abcdef"
