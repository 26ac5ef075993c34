; What CPUID shows the guest: VMX hidden, a hypervisor present, and
; Scalevisor's own leaves.
bits 64
org 0x8000
%include "hypercall.inc"

    mov eax, 1
    cpuid
    REPORT ecx, 1               ; leaf 1 ECX: VMX (bit 5) clear, hypervisor (bit 31) set
    mov eax, 0x40000000
    cpuid
    mov r8d, ebx
    mov r9d, ecx
    mov r10d, edx
    REPORT eax, 2               ; the highest hypervisor leaf
    REPORT r8d, 3               ; the signature, in EBX, ECX, EDX
    REPORT r9d, 4
    REPORT r10d, 5
    mov eax, 0x40000001
    cpuid
    REPORT eax, 6               ; the hypercall ABI version
    hlt
