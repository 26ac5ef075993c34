; Guest-controlled values the hypervisor emulates, set as hardware would
; refuse them: each must raise the fault a CPU raises (#GP or #UD), never a
; failed VM entry; XSETBV faults as the CPU's rules say. Then INVD (a no-op),
; and VMCALLs with LOCK or an operand-size prefix: #UD on both vendors, not
; hypercalls.
bits 64
org 0x8000
%include "hypercall.inc"
%include "idt64.inc"

%define EFER 0xc0000080

; WRMSR_EFER value, resume: an EFER write that must raise #GP.
%macro WRMSR_EFER 2
    RESUME_AT %2
    mov ecx, EFER
    mov eax, (%1) & 0xffffffff
    mov edx, (%1) >> 32
    wrmsr                       ; exit: msr write EFER, #GP
    REPORT 0xbad, 1             ; skipped by the handler
%2:
%endmacro

; MOV_CR4 bits, resume: setting `bits` in CR4 must raise #GP.
%macro MOV_CR4 2
    RESUME_AT %2
    mov rax, cr4
    or rax, %1
    mov cr4, rax                ; #GP: by the CPU for a reserved bit, else by the hypervisor
    REPORT 0xbad, 2
%2:
%endmacro

    SET_GATE 13, gp_handler
    SET_GATE 6, ud_handler
    LOAD_IDT
    WRMSR_EFER 0xd00 | (1 << 12), after_svme  ; SVME: the guest sees no SVM
    WRMSR_EFER 0x400, after_lme               ; LME cleared in long mode
    WRMSR_EFER 0xd00 | (1 << 40), after_rsvd  ; a reserved bit
    MOV_CR4 1 << 13, after_vmxe               ; VMXE: the guest sees no VMX
    RESUME_AT after_xsetbv
    xor ecx, ecx
    xor edx, edx
    mov eax, 1
    xsetbv                      ; #UD: CR4.OSXSAVE is clear
    REPORT 0xbad, 3
after_xsetbv:
    mov rax, cr4
    or rax, 1 << 18
    mov cr4, rax                ; exit: OSXSAVE, allowed (these CPUs have XSAVE)
    RESUME_AT after_x87_off
    xor ecx, ecx
    mov eax, 2                  ; SSE without x87
    xsetbv                      ; #GP
    REPORT 0xbad, 6
after_x87_off:
    RESUME_AT after_xcr1
    mov ecx, 1                  ; XCR1
    mov eax, 1
    xsetbv                      ; #GP
    REPORT 0xbad, 7
after_xcr1:
    invd                        ; exit: invd, ignored
    RESUME_AT after_lock
    mov eax, HC_REPORT
    lock vmcall                 ; #UD on both vendors, no hypercall
    REPORT 0xbad, 4
after_lock:
    RESUME_AT after_66
    mov ebx, 0xbad
    mov ecx, 5
    mov eax, HC_REPORT
    db 0x66                     ; operand-size prefix: another opcode, #UD
    vmcall
after_66:
    hlt

HANDLER gp_handler, 13, 1
HANDLER ud_handler, 6, 0
IDT64_DATA
