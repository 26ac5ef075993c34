/*
 * u64 vmx_enter(struct VmxContext *ctx, u64 launched)
 * Loads the guest's registers and FPU/SSE state, enters it with VMLAUNCH or
 * VMRESUME, and returns 0 after the VM exit that `vmx_exit` receives, or 1
 * (VMfailInvalid) or 2 (VMfailValid) when the entry itself failed.
 * The host's FPU/SSE state is kept in the context: Rust code uses SSE and
 * must neither see nor clobber the guest's.
 * Layout (see VmxContext): 15 registers from rax at 0, guest FXSAVE area at
 * 128, host FXSAVE area at 640.
 */
    .section .text.vmx, "ax"
    .globl vmx_enter
vmx_enter:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rdi                      /* the context, found again at exit */
    fxsave64 640(%rdi)
    fxrstor64 128(%rdi)
    movq $0x6c14, %rax              /* HOST_RSP */
    vmwrite %rsp, %rax
    testq %rsi, %rsi                /* flags survive the moves below */
    movq 0(%rdi), %rax
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
    jnz 1f
    vmlaunch
    jmp 2f
1:  vmresume
2:  /* Entry failed: CF set for VMfailInvalid, ZF for VMfailValid. */
    movl $1, %eax
    jc 3f
    movl $2, %eax
3:  popq %rdi
    fxrstor64 640(%rdi)
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

    .globl vmx_exit
vmx_exit:                           /* HOST_RIP; RSP is HOST_RSP: the context is on top */
    pushq %rdi
    movq 8(%rsp), %rdi
    movq %rax, 0(%rdi)
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
    fxsave64 128(%rdi)
    fxrstor64 640(%rdi)
    popq %rdi                       /* the context pushed by vmx_enter */
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    xorl %eax, %eax
    ret
