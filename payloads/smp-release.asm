; A page given back while every vCPU has its translation cached: vCPU 0
; writes it, all read it (their TLBs now hold it), vCPU 0 releases it (the
; hypervisor unmaps it, has every CPU flush, frees the frame), then all read
; it again and must see a fresh zeroed page, not the old frame through a
; stale translation. Every vCPU checks with ASSERT_EQ.
bits 64
org 0x8000
%include "hypercall.inc"
%include "assert.inc"

%define PAGE 0x200000

    mov r12, rdi                    ; this vCPU's index
    test r12, r12
    jnz .written
    mov rax, 0x5eed
    mov [PAGE], rax
.written:
    BARRIER
    mov rax, [PAGE]
    ASSERT_EQ(rax, 0x5eed)
    BARRIER
    test r12, r12
    jnz .released
    mov eax, HC_RELEASE
    mov ebx, PAGE
    vmcall
    ASSERT_EQ(rax, 0)
.released:
    BARRIER
    mov rax, [PAGE]
    ASSERT_EQ(rax, 0)
    REPORT 1, 1
    hlt
