; sv-mark: `deno task bench linux` runs it at /init to count what the boot
; took. It executes the mark QEMU's instruction counter waits for
; (harness/meter/insns.c: `xchg r15, r15`, which no compiler emits), then
; prints the time stamp counter in decimal, which Bochs' clock counts in
; instructions (busybox has no way to read it).
%include "linux/elf.inc"

_start:
        xchg r15, r15                   ; the mark: 4D 87 FF
        rdtsc
        shl rdx, 32
        or rax, rdx
        lea rsi, [rel digits_end]
        mov byte [rsi], 10              ; the newline
        mov ecx, 10
.digit: xor edx, edx
        div rcx
        add dl, '0'
        dec rsi
        mov [rsi], dl
        test rax, rax
        jnz .digit
        lea rdx, [rel digits_end + 1]
        sub rdx, rsi                    ; the length, newline included
        mov edi, 1                      ; stdout
        mov eax, SYS_WRITE
        syscall
        xor edi, edi
        mov eax, SYS_EXIT
        syscall

digits: times 20 db 0                   ; 2^64 has 20 digits
digits_end:
        db 0
file_end:
