; The first guest: one CPUID, one hypercall, then HLT.
bits 64
org 0x8000
%include "hypercall.inc"

start:
    xor eax, eax
    cpuid                     ; exit: cpuid leaf 0
    REPORT 0x5ca1ab1e, 1      ; exit: hypercall report
    hlt                       ; exit: hlt, the guest is done
