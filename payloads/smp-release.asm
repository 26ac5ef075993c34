; A page given back while every vCPU has its translation cached: vCPU 0
; writes it and its neighbours, all read them (their TLBs now hold them),
; vCPU 0 releases the page (the hypervisor unmaps it, has every CPU flush,
; frees the frame), then all read again: the released page must be a fresh
; zeroed page, not the old frame through a stale translation, and its
; neighbours must keep their data, also when the three share one 2 MiB page
; (numa.page=2m: the release splits it first). Every vCPU checks with
; ASSERT_EQ.
bits 64
org 0x8000
%include "hypercall.inc"
%include "assert.inc"

%define LARGE 0x200000              ; a 2 MiB page: the first, released, last 4 KiB
%define PAGE LARGE + 0x1000
%define LAST LARGE + 0x1ff000

    mov r12, rdi                    ; this vCPU's index
    test r12, r12
    jnz .written
    mov rax, 0x5eed
    mov [PAGE], rax
    mov rax, 0xf157
    mov [LARGE], rax
    mov rax, 0x1a57
    mov [LAST], rax
.written:
    BARRIER
    mov rax, [PAGE]
    ASSERT_EQ(rax, 0x5eed)
    mov rax, [LARGE]
    ASSERT_EQ(rax, 0xf157)
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
    mov rax, [LARGE]
    ASSERT_EQ(rax, 0xf157)
    mov rax, [LAST]
    ASSERT_EQ(rax, 0x1a57)
    REPORT 1, 1
    hlt
