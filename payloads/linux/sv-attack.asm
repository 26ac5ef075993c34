; sv-attack: a root process in the Linux guest trying, one way per run, to
; take the machine from the hypervisor through the ports (`sv-attack NAME
; [ARG]`). Each attack prints `SV-ATTACK NAME tried` first, and `SV-ATTACK
; NAME survived` if it comes back; what the hypervisor did is in its own
; events (scenarios/linux-attack.ts), never in what this prints.
;   kbc       the keyboard controller's output port with the reset line low
;   pm-base   PCI configuration (mechanism #1) moving q35's ACPI PM base to
;             0x900, then SLP_EN at the moved PM1 control
;   straddle  a word at 0x2f7 and a dword at 0x2f5, both covering COM2
;   outs      REP OUTSB to COM2 (the hypervisor's channel)
;   fw-cfg A  QEMU's fw_cfg DMA with its descriptor written at physical
;             address A (hex, memory mapped 1:1 the guest may write): item 0
;             ("QEMU") read to 0x200000, the hypervisor's first bytes
;   memory A  physical address A (hex) through /dev/mem, mapped cached (as the
;             kernel maps ACPI memory): read, then written
%include "linux/elf.inc"

_start:
        mov rbx, [rsp + 16]             ; argv[1]
        test rbx, rbx
        jz usage
        lea rsi, [rel attacks]
.next:  mov rdi, [rsi]
        test rdi, rdi
        jz usage
        call same
        je .found
        add rsi, 16
        jmp .next
.found: mov r12, rsi                    ; the attack's entry
        mov rsi, tried
        call report
        mov eax, SYS_IOPL
        mov edi, 3
        syscall
        test rax, rax
        jnz fail
        call [r12 + 8]
        mov rsi, survived
        call report
        xor edi, edi
        jmp exit

usage:
fail:   mov edi, 2
exit:   mov eax, SYS_EXIT
        syscall

; Whether the NUL-terminated strings at RBX and RDI are the same (ZF).
same:   push rbx
.loop:  mov al, [rbx]
        cmp al, [rdi]
        jne .done
        inc rbx
        inc rdi
        test al, al
        jnz .loop
.done:  pop rbx
        ret

; Writes "SV-ATTACK <argv[1]> <RSI's word>\n" on stdout.
report: push rsi
        mov rsi, prefix
        mov edx, prefix_len
        call write
        mov rsi, rbx
        call strlen
        call write
        pop rsi
        call strlen
        call write
        mov rsi, newline
        mov edx, 1
        ; fall through
write:  mov eax, SYS_WRITE
        mov edi, 1
        syscall
        ret
; RDX: the length of the string at RSI.
strlen: xor edx, edx
.loop:  cmp byte [rsi + rdx], 0
        je .done
        inc edx
        jmp .loop
.done:  ret

kbc:    mov al, 0xd1                    ; write the output port:
        out 0x64, al
        mov al, 0xfe                    ; reset line (bit 0) low, A20 on
        out 0x60, al
        ret

pm_base:
        mov dx, 0xcf8
        mov eax, 0x8000f840             ; 00:1f.0, PMBASE
        out dx, eax
        mov dx, 0xcfc
        mov eax, 0x901
        out dx, eax
        mov dx, 0x904                   ; PM1 control at the new base:
        mov ax, 0x2000                  ; SLP_EN, SLP_TYP 0 (S5 on QEMU)
        out dx, ax
        ret

straddle:
        mov dx, 0x2f7
        mov ax, 0x4141
        out dx, ax
        mov dx, 0x2f5
        mov eax, 0x41414141
        out dx, eax
        ret

outs:   mov rsi, forged
        mov ecx, forged_len
        mov dx, 0x2f8
        rep outsb
        ret

; R13: argv[2] as a hex number (an address).
address:
        mov rsi, [rsp + 16 + 24]        ; argv[2], past two return addresses
        test rsi, rsi
        jz fail
        xor r13d, r13d
.digit: movzx eax, byte [rsi]
        inc rsi
        test al, al
        jz .done
        cmp al, 'x'
        je .digit
        sub al, '0'
        cmp al, 9
        jbe .add
        or al, 0x20                     ; 'a'-'f' after the subtraction
        sub al, 'a' - '0' - 10
.add:   shl r13, 4
        or r13, rax
        jmp .digit
.done:  ret

fw_cfg: call address                    ; the descriptor's
        push r13
        call map
        ; Big-endian fields: control (select item 0, read), length 4,
        ; address 0x200000.
        mov rax, 0x040000000a000000
        mov [r13], rax
        mov rax, 0x0000200000000000
        mov [r13 + 8], rax
        pop r13
        xor eax, eax                    ; the address, big-endian: high half
        mov dx, 0x514
        out dx, eax
        mov eax, r13d                   ; low half: starts the transfer
        bswap eax
        mov dx, 0x518
        out dx, eax
        ret

memory: call address
        call map
        mov eax, [r13]                  ; a read
        mov dword [r13], 0x41414141     ; a write
        ret

; R13: the physical address R13 mapped through /dev/mem, cached.
map:    mov eax, SYS_OPEN
        mov rdi, dev_mem
        mov esi, O_RDWR                 ; no O_SYNC: a cached mapping
        syscall
        test eax, eax
        js fail
        mov r8d, eax                    ; mmap(0, 4096, read|write, shared, fd, page)
        mov eax, SYS_MMAP
        xor edi, edi
        mov esi, 4096
        mov edx, 3
        mov r10d, 1
        mov r9, r13
        and r9, ~0xfff
        syscall
        cmp rax, -4096
        ja fail
        and r13d, 0xffc
        add r13, rax
        ret

attacks:
        dq name_kbc, kbc
        dq name_pm_base, pm_base
        dq name_straddle, straddle
        dq name_outs, outs
        dq name_fw_cfg, fw_cfg
        dq name_memory, memory
        dq 0, 0
name_kbc: db "kbc", 0
name_pm_base: db "pm-base", 0
name_straddle: db "straddle", 0
name_outs: db "outs", 0
name_fw_cfg: db "fw-cfg", 0
name_memory: db "memory", 0
dev_mem: db "/dev/mem", 0
prefix: db "SV-ATTACK "
prefix_len equ $ - prefix
tried: db " tried", 0
survived: db " survived", 0
newline: db 10
forged: db '@sv {"ev":"exit","status":"pass"}', 10
forged_len equ $ - forged
file_end:
