; The exit-cost benchmark (`deno task bench exits`): loops of N1 and N2
; CPUID exits, then of N1 and N2 `nop` hypercalls, each timed with RDTSC
; and reported (tags 1, 2: CPUID; 3, 4: hypercalls; 5, 6: N1 and N2). The
; harness takes the slope, (t2 - t1) / (N2 - N1): the cost of one round
; trip, the guest's loop included (three instructions), fixed costs out.
; Under QEMU with -icount shift=0 and under Bochs the TSC counts
; instructions. The hypercall is VMMCALL on AMD and VMCALL on Intel: each
; vendor's own, with no #UD on the way.
bits 64
org 0x8000
%include "hypercall.inc"

%define N1 500
%define N2 2500

    xor eax, eax
    cpuid
    xor r15d, r15d
    cmp ebx, 0x68747541             ; "Auth": AMD
    sete r15b

%macro TIMED 3                      ; count, tag, body (one exit)
    mov r12d, %1
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r13, rax
%%again:
    %3
    dec r12d
    jnz %%again
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, r13
    REPORT64 rax, %2
%endmacro

%macro CPUID0 0
    xor eax, eax
    cpuid
%endmacro

%macro VMCALL_NOP 0
    mov eax, HC_NOP
    vmcall
%endmacro

%macro VMMCALL_NOP 0
    mov eax, HC_NOP
    vmmcall
%endmacro

    TIMED N1, 1, CPUID0
    TIMED N2, 2, CPUID0
    test r15d, r15d
    jnz amd
    TIMED N1, 3, VMCALL_NOP
    TIMED N2, 4, VMCALL_NOP
    jmp done
amd:
    TIMED N1, 3, VMMCALL_NOP
    TIMED N2, 4, VMMCALL_NOP
done:
    REPORT N1, 5
    REPORT N2, 6
    hlt
