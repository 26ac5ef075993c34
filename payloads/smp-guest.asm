; Every vCPU runs this at once (docs/hypercalls.md): it reports its index
; (RDI) and its APIC id, counts itself in with a locked increment, meets
; the others at the barrier, then checks that all of them counted
; themselves in (ASSERT_EQ against RSI, the vCPU count) and reports it.
bits 64
org 0x8000
%include "hypercall.inc"
%include "assert.inc"

    mov r12, rdi                    ; this vCPU's index
    mov r13, rsi                    ; how many vCPUs
    REPORT64 r12, 1
    mov eax, 1
    cpuid
    shr ebx, 24                     ; the initial APIC id
    REPORT ebx, 2
    lock inc qword [arrived]
    mov eax, HC_BARRIER
    vmcall
    mov rax, [arrived]
    ASSERT_EQ(rax, r13)
    REPORT64 r13, 3
    hlt

arrived: dq 0
