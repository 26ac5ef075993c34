; A guest that triple-faults: no IDT, then a breakpoint. The hypervisor
; sees the shutdown, stops the guest and carries on.
bits 64
org 0x8000
%include "hypercall.inc"

    REPORT 0x3f, 1
    lidt [empty_idt]
    int3                        ; #BP -> #GP -> #DF -> shutdown: exit triple-fault
    REPORT 0xbad, 2
    hlt

align 8
empty_idt:
    dw 0
    dq 0
