; Port I/O: an intercepted OUT and IN (the scenario asks for ports 0x80 and
; 0x71), and an attempt to reach the emulator's exit device at 0xf4, which
; the hypervisor always blocks.
bits 64
org 0x8000
%include "hypercall.inc"

    mov al, 0x42
    out 0x80, al                ; exit: io out 0x80, 0x42
    in al, 0x71                 ; exit: io in 0x71, no device: 0xff
    movzx r8d, al
    REPORT r8d, 1
    mov dx, 0xf4
    mov eax, 0x11
    out dx, eax                 ; exit: io out 0xf4, blocked: the run goes on
    REPORT 0x600d, 2            ; still running
    hlt
