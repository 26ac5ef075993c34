; Touches 256 pages of guest RAM from 1 MiB, writing each page's number into
; it, then reads them back and checks each with ASSERT_EQ: the guest's own
; check that its memory holds what it wrote, wherever the hypervisor put it.
bits 64
org 0x8000
%include "assert.inc"

%define BASE 0x100000
%define PAGES 256

    xor ecx, ecx
.write:
    mov rdi, rcx
    shl rdi, 12
    mov [BASE + rdi], rcx
    inc ecx
    cmp ecx, PAGES
    jb .write
    xor ecx, ecx
.check:
    mov rdi, rcx
    shl rdi, 12
    mov rax, [BASE + rdi]
    ASSERT_EQ(rax, rcx)
    inc ecx
    cmp ecx, PAGES
    jb .check
    hlt
