; Port I/O: an intercepted OUT and IN (the scenario asks for ports 0x80 and
; 0x71), then a write to the emulator's exit device at 0xf4: the hypervisor
; takes it as this guest's exit with its status, and the emulator never
; sees it (the run goes on to the hypervisor's own exit).
bits 64
org 0x8000
%include "hypercall.inc"

    mov al, 0x42
    out 0x80, al                ; exit: io out 0x80, 0x42
    in al, 0x71                 ; exit: io in 0x71, no device: 0xff
    movzx r8d, al
    REPORT r8d, 1
    mov dx, 0xf4
    xor eax, eax
    out dx, eax                 ; exit: io out 0xf4, the guest's end with status 0
    REPORT 0xbad, 2             ; never runs
    hlt
