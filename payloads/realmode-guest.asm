; A guest in 16-bit real mode (unrestricted guest): CR0.PE and PG clear.
bits 16
org 0x8000
%include "hypercall.inc"

    mov eax, cr0
    REPORT eax, 1               ; PE and PG clear
    mov ax, cs
    movzx eax, ax
    REPORT eax, 2               ; CS 0: the payload runs at 0000:8000
    xor eax, eax
    cpuid                       ; exit: cpuid in real mode
    hlt
