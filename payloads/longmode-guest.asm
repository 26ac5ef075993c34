; A guest in 64-bit long mode: paging on, EFER.LMA set, CR4 without the
; VMXE bit VMX forces on underneath; and SSE registers that survive exits
; (the hypervisor's Rust code uses SSE between them).
bits 64
org 0x8000
%include "hypercall.inc"

    mov rax, cr0
    REPORT64 rax, 1             ; PE and PG set
    mov rax, cr4
    REPORT64 rax, 2             ; PAE set, VMXE not visible
    mov ecx, 0xc0000080
    rdmsr
    REPORT eax, 3               ; EFER: LME and LMA
    mov rax, cr4
    or rax, 0x600               ; OSFXSR, OSXMMEXCPT: SSE on, as an OS does;
    mov cr4, rax                ; exit: cr-write, checked and emulated
    mov rax, 0x1122334455667788
    movq xmm0, rax
    mov rax, 0x99aabbccddeeff00
    movq xmm7, rax
    xor eax, eax
    cpuid                       ; exit: the hypervisor runs Rust code
    REPORT 0, 4                 ; and again
    movq rax, xmm0
    REPORT64 rax, 5
    movq rax, xmm7
    REPORT64 rax, 6
    hlt
