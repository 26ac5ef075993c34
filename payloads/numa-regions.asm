; Each vCPU touches a region of its own: vCPU i writes PAGES pages from
; BASE + i * REGION, then reads them back (ASSERT_EQ). Its first touches are
; its own, so first-touch must back its region on its CPU's node; other
; policies must place the same pages as they say, whoever touches them.
; Regions are 2 MiB-aligned, so that 2 MiB pages stay one vCPU's.
bits 64
org 0x8000
%include "assert.inc"

%define BASE 0x200000
%define REGION 0x200000
%define PAGES 64

    mov rbx, rdi
    imul rbx, REGION
    add rbx, BASE                   ; this vCPU's region
    xor ecx, ecx
.write:
    mov rdx, rcx
    shl rdx, 12
    mov [rbx + rdx], rcx
    inc ecx
    cmp ecx, PAGES
    jb .write
    xor ecx, ecx
.check:
    mov rdx, rcx
    shl rdx, 12
    mov rax, [rbx + rdx]
    ASSERT_EQ(rax, rcx)
    inc ecx
    cmp ecx, PAGES
    jb .check
    hlt
