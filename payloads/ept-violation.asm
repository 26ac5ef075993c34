; Touches guest-physical memory that no EPT entry backs. The guest's own
; page tables map the first GiB, so the access reaches EPT, which faults.
bits 64
org 0x8000
%include "hypercall.inc"

%define UNBACKED 0x30000000     ; 768 MiB: far above the guest's RAM

    REPORT UNBACKED, 1
    mov rax, UNBACKED
    mov rbx, [rax]              ; exit: ept-violation, read, not mapped
    REPORT 0xbad, 2             ; never reached: the guest stops
    hlt
