; A multiboot2 test kernel: an ELF image written out by NASM, loaded at
; 1 MiB, with a multiboot2 header that asks for the memory map (required)
; and names its entry. It checks the magic, finds the memory map and the
; command line among the information's tags, prints on COM1 and ends
; through the isa-debug-exit port: 0 passed, 1 failed.
bits 32
org 0x100000

ehdr:
    db 0x7f, "ELF", 1, 1, 1, 0
    times 8 db 0
    dw 2, 3                             ; executable, i386
    dd 1
    dd 0                                ; no ELF entry: the header's entry tag gives it
    dd phdr - ehdr
    dd 0, 0
    dw 52, 32, 1, 0, 0, 0
phdr:
    dd 1, 0, ehdr, ehdr                 ; PT_LOAD from the file's start, at 1 MiB
    dd file_end - ehdr, file_end - ehdr + 0x1000 ; then a page of BSS: the stack
    dd 5, 0x1000

align 8
header:
    dd 0xe85250d6, 0, header_end - header
    dd -(0xe85250d6 + 0 + (header_end - header))
    dw 1, 0                             ; information request, required:
    dd 16
    dd 6, 1                             ; the memory map and the command line
    dw 3, 0                             ; the entry address
    dd 12
    dd start
    dd 0                                ; padding to 8
    dw 0, 0                             ; end
    dd 8
header_end:

start:
    cmp eax, 0x36d76289
    jne failed
    lea esi, [ebx + 8]                  ; the first tag
    xor edi, edi                        ; what was found: 1 command line, 2 memory map
.tag:
    mov eax, [esi]
    test eax, eax
    jz .tags_done
    cmp eax, 6
    jne .not_mmap
    or edi, 2
.not_mmap:
    cmp eax, 1
    jne .next
    cmp dword [esi + 8], "mult"         ; "multiboot2"
    jne .next
    or edi, 1
.next:
    mov eax, [esi + 4]
    add eax, 7
    and eax, ~7
    add esi, eax
    jmp .tag
.tags_done:
    cmp edi, 3
    jne failed
    mov esp, stack_top                  ; a stack of its own, in its BSS page
    mov esi, message
    jmp passed

%include "testkernel.inc"

message: db "multiboot2 kernel: magic, memory map and command line as promised", 10, 0
file_end:
stack_top equ ehdr + ((file_end - ehdr + 0xfff) & ~0xfff) + 0x1000
