; The guest sees no VMX: VMXON raises #UD, which its handler reports.
bits 64
org 0x8000
%include "hypercall.inc"
%include "idt64.inc"

    SET_GATE 6, ud_handler
    LOAD_IDT
    RESUME_AT after_vmxon
    vmxon [vmxon_region]        ; exit: vmxon, #UD injected
    REPORT 0xbad, 1             ; skipped by the handler
after_vmxon:
    hlt

HANDLER ud_handler, 6, 0
IDT64_DATA
align 8
vmxon_region: dq 0x2000
