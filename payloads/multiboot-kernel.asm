; A multiboot (version 1) test kernel, as OS test kernels are built: an ELF
; image written out by hand (NASM's flat output; no linker needed), loaded
; at 1 MiB with a page of BSS. It checks what a multiboot loader promises
; (EAX magic, a memory map, zeroed BSS, flat protected mode), prints on
; COM1 and ends through the isa-debug-exit port: 0 passed, 1 failed.
bits 32
org 0x100000

ehdr:
    db 0x7f, "ELF", 1, 1, 1, 0          ; 32-bit, little-endian, version 1
    times 8 db 0
    dw 2                                ; executable
    dw 3                                ; i386
    dd 1
    dd start                            ; entry
    dd phdr - ehdr                      ; program headers
    dd 0, 0                             ; no sections, flags
    dw 52, 32, 1, 0, 0, 0               ; header sizes, one program header
phdr:
    dd 1                                ; PT_LOAD
    dd 0                                ; from the file's start
    dd ehdr, ehdr                       ; at 1 MiB
    dd file_end - ehdr                  ; bytes in the file
    dd file_end - ehdr + 0x1000         ; then a page of BSS
    dd 5, 0x1000                        ; read+execute, page-aligned

align 4
    dd 0x1badb002                       ; the multiboot header
    dd 3                                ; page-aligned modules, memory info
    dd -(0x1badb002 + 3)

start:
    cmp eax, 0x2badb002
    jne failed
    test dword [ebx], 1 << 6            ; a memory map
    jz failed
    cmp dword [ebx + 8], 1024           ; more than 1 MiB above 1 MiB
    jb failed
    cmp dword [bss], 0
    jne failed
    mov eax, cs
    cmp eax, 0x18                       ; any flat code selector would do: ours
    jne failed
    mov esp, bss + 0x1000               ; a stack of its own, in its BSS page
    mov esi, message
    jmp passed

%include "testkernel.inc"

message: db "multiboot kernel: magic, memory map and BSS as promised", 10, 0
file_end:
bss equ ehdr + ((file_end - ehdr + 0xfff) & ~0xfff)
