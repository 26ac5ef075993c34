; A guest in 32-bit protected mode, paging off.
bits 32
org 0x8000
%include "hypercall.inc"

    mov eax, cr0
    REPORT eax, 1               ; PE set, PG clear
    mov ax, cs
    movzx eax, ax
    REPORT eax, 2               ; the 32-bit code selector, 0x18
    xor eax, eax
    cpuid                       ; exit: cpuid
    hlt
