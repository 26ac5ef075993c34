/*
 * u64 svm_enter(struct CpuContext *ctx, u64 vmcb_pa, u64 host_save_pa,
 *               u64 host_interrupts)
 * Loads the guest's registers (RAX and RSP live in the VMCB) and FPU/SSE
 * state, and runs the guest with VMRUN until its next #VMEXIT. VMRUN keeps
 * only part of the host's state: VMSAVE/VMLOAD swap the rest (FS, GS, TR,
 * LDTR, the SYSCALL and SYSENTER MSRs) around it, with GIF clear.
 * Layout (see CpuContext): 15 registers from rax at 0, guest FXSAVE area at
 * 128, host FXSAVE area at 640.
 */
    .section .text.svm, "ax"
    .globl svm_enter
svm_enter:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rdi                      /* the context */
    pushq %rdx                      /* the host save area */
    pushq %rsi                      /* the VMCB */
    fxsave64 640(%rdi)
    fxrstor64 128(%rdi)
    cli
    clgi
    testq %rcx, %rcx                /* an OS guest's interrupts stay pending for it: */
    jz 1f                           /* VMRUN saves IF=0, the host never takes them */
    sti                             /* GIF holds interrupts off; VMRUN saves IF=1, */
                                    /* so a host interrupt (the watchdog) exits */
1:
    movq %rdx, %rax
    vmsave %rax
    movq %rsi, %rax
    vmload %rax
    movq 8(%rdi), %rbx
    movq 16(%rdi), %rcx
    movq 24(%rdi), %rdx
    movq 32(%rdi), %rsi
    movq 48(%rdi), %rbp
    movq 56(%rdi), %r8
    movq 64(%rdi), %r9
    movq 72(%rdi), %r10
    movq 80(%rdi), %r11
    movq 88(%rdi), %r12
    movq 96(%rdi), %r13
    movq 104(%rdi), %r14
    movq 112(%rdi), %r15
    movq 40(%rdi), %rdi
    vmrun %rax
    /* #VMEXIT: RAX and RSP are the host's again, the rest is the guest's. */
    .globl svm_resume
svm_resume:                         /* the host RIP VMRUN saves (see lost_state) */
    pushq %rdi
    movq 24(%rsp), %rdi             /* the context, under rdi, VMCB and save area */
    movq %rbx, 8(%rdi)
    movq %rcx, 16(%rdi)
    movq %rdx, 24(%rdi)
    movq %rsi, 32(%rdi)
    movq %rbp, 48(%rdi)
    movq %r8, 56(%rdi)
    movq %r9, 64(%rdi)
    movq %r10, 72(%rdi)
    movq %r11, 80(%rdi)
    movq %r12, 88(%rdi)
    movq %r13, 96(%rdi)
    movq %r14, 104(%rdi)
    movq %r15, 112(%rdi)
    popq %rax
    movq %rax, 40(%rdi)
    popq %rax                       /* the VMCB */
    vmsave %rax
    popq %rax                       /* the host save area */
    vmload %rax
    stgi                            /* an interrupt that ended the guest is taken here */
    nop
    cli
    popq %rdi
    fxsave64 128(%rdi)
    fxrstor64 640(%rdi)
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    xorl %eax, %eax
    ret
