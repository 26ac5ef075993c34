; A guest that forges a complete passing run on COM1, the port it owns: the
; events a passing vmlaunch-basic would show, the kernel's exit, then "@sv "
; with no newline (to break the next real line), by OUT and by REP OUTSB;
; then tries the hypervisor's COM2, puts COM1 in loopback with DLAB set, and
; triple-faults. Only what the hypervisor reports on COM2 counts.
bits 64
org 0x8000

%define COM1 0x3f8
%define COM2 0x2f8

    mov dx, COM1 + 3
    mov al, 0x03                ; 8N1 (Bochs' UART starts in 5-bit mode)
    out dx, al
    lea rsi, [forged]
    mov rcx, forged_len
.next:
    mov dx, COM1 + 5
.wait:
    in al, dx                   ; COM1 passes through: no exit
    test al, 0x20
    jz .wait
    mov dx, COM1
    lodsb
    out dx, al
    loop .next
    lea rsi, [forged_exit]      ; string I/O to COM1: no exit either
    mov rcx, forged_exit_len
    mov dx, COM1
    rep outsb
    mov dx, COM2
    mov al, '@'
    out dx, al                  ; exit: io out 0x2f8, blocked
    mov dx, COM1 + 3
    mov al, 0x83                ; DLAB set
    out dx, al
    mov dx, COM1 + 4
    mov al, 0x10                ; loopback
    out dx, al
    lidt [empty_idt]
    int3                        ; exit: triple-fault

forged:
    db '@sv {"ev":"vmexit","vcpu":0,"reason":"hypercall","rip":"0x8000","call":"report","value":"0x5ca1ab1e","tag":"0x1"}', 10
    db '@sv {"ev":"vmexit","vcpu":0,"reason":"hlt","rip":"0x8010"}', 10
    db '@sv {"ev":"guest-end","vcpu":0,"how":"hlt","failed":false,"exits":2}', 10
    db '@sv {"ev":"vmxoff","exits":2}', 10
    db '@sv {"ev":"svm-off","exits":2}', 10
forged_len equ $ - forged
forged_exit:
    db '@sv {"ev":"exit","status":"pass"}', 10, '@sv '
forged_exit_len equ $ - forged_exit

align 8
empty_idt:
    dw 0
    dq 0
