; MSRs: IA32_FEATURE_CONTROL reads as locked with VMX off, the VMX
; capability MSRs and unknown writes raise #GP, and EFER writes are emulated.
bits 64
org 0x8000
%include "hypercall.inc"
%include "idt64.inc"

    SET_GATE 13, gp_handler
    LOAD_IDT
    mov ecx, 0x3a
    rdmsr                       ; exit: msr read 0x3a, emulated
    REPORT eax, 1
    RESUME_AT after_vmx_basic
    mov ecx, 0x480
    rdmsr                       ; exit: msr read 0x480, #GP
    REPORT 0xbad, 2             ; skipped by the handler
after_vmx_basic:
    RESUME_AT after_write
    mov ecx, 0x1b               ; IA32_APIC_BASE: the guest may not move the host's APIC
    xor eax, eax
    xor edx, edx
    wrmsr                       ; exit: msr write 0x1b, #GP
after_write:
    mov ecx, 0xc0000080
    rdmsr                       ; EFER reads are not intercepted
    mov r8d, eax
    mov r9d, edx
    REPORT r8d, 3
    mov ecx, 0xc0000080
    mov eax, r8d
    mov edx, r9d
    wrmsr                       ; exit: msr write EFER, emulated
    hlt

HANDLER gp_handler, 13, 1
IDT64_DATA
