; Guest memory under every change at once: each vCPU owns the pages of a
; region whose page number modulo the vCPU count is its index (neighbours in
; one 2 MiB page and one table belong to different vCPUs). Each round, every
; vCPU writes a tag (round, page, vCPU) at both ends of each of its pages,
; reads them all back, then releases one of them (it must read zeros), moves
; another to the other node (it must keep its tags), touches the rest, and
; moves one of the next vCPU's pages, which that vCPU may be releasing or
; writing at the same time; while the others do the same and adaptive
; placement samples, moves, splits and replicates pages. Any stale translation, lost write, frame
; shared by two pages or neighbour's data lost shows as a wrong tag
; (ASSERT_EQ, with its line). vCPU i reports its rounds, tag 1.
bits 64
org 0x8000
%include "hypercall.inc"
%include "assert.inc"

%define BASE 0x400000               ; the region: PAGES pages from 4 MiB
%define PAGES 96
%define ROUNDS 40

; TAG out, page: out = round (r14) << 32 | page << 8 | this vCPU (r12);
; ADDRESS out, page: the page's guest-physical address. `page` is kept.
%macro TAG 2
    mov %1, r14
    shl %1, 32
    push %2
    shl %2, 8
    or %1, %2
    pop %2
    or %1, r12
%endmacro
%macro ADDRESS 2
    mov %1, %2
    shl %1, 12
    add %1, BASE
%endmacro

    mov r12, rdi                    ; this vCPU's index
    mov r13, rsi                    ; the vCPU count
    BARRIER
    mov r14, 1                      ; the round
.round:
    ; Write: tag = round << 32 | page << 8 | vCPU, at +0 and at +0xff8.
    mov rcx, r12
.write:
    TAG rax, rcx
    ADDRESS rdi, rcx
    mov [rdi], rax
    mov [rdi + 0xff8], rax
    add rcx, r13
    cmp rcx, PAGES
    jb .write
    ; Read every one back.
    mov rcx, r12
.check:
    TAG rax, rcx
    ADDRESS rdi, rcx
    mov rdx, [rdi]
    ASSERT_EQ(rdx, rax)
    mov rdx, [rdi + 0xff8]
    ASSERT_EQ(rdx, rax)
    add rcx, r13
    cmp rcx, PAGES
    jb .check
    ; Release the page `round` own pages in (mod its own count): zeros after.
    mov rax, r14
    xor edx, edx
    mov rcx, PAGES
    sub rcx, r12
    add rcx, r13
    dec rcx
    push rax
    mov rax, rcx
    xor edx, edx
    div r13                         ; own pages: ceil((PAGES - i) / n)
    mov rcx, rax
    pop rax
    xor edx, edx
    div rcx                         ; rdx = round mod own pages
    mov r15, rdx                    ; remember k: the next one moves
    mov rax, rdx
    mul r13
    add rax, r12                    ; the page number
    shl rax, 12
    add rax, BASE
    mov rbx, rax
    push rbx
    mov eax, HC_RELEASE
    vmcall
    ASSERT_EQ(rax, 0)
    pop rbx
    mov rax, [rbx]
    ASSERT_EQ(rax, 0)
    mov rax, [rbx + 0xff8]
    ASSERT_EQ(rax, 0)
    ; Move the next own page to node (round & 1): it keeps its tags.
    inc r15
    cmp r15, rcx
    jb .in
    xor r15, r15
.in:
    mov rax, r15
    mul r13
    add rax, r12
    mov rdi, rax                    ; its page number, for the tag
    shl rax, 12
    add rax, BASE
    mov rbx, rax
    push rbx
    push rdi
    mov ecx, r14d
    and ecx, 1
    mov eax, HC_MIGRATE
    vmcall
    ASSERT_EQ(rax, 0)
    pop rdi
    pop rbx
    TAG rax, rdi
    mov rdx, [rbx]
    ASSERT_EQ(rdx, rax)
    mov rdx, [rbx + 0xff8]
    ASSERT_EQ(rdx, rax)
    ; Move a page of the next vCPU, which it may be releasing or writing right
    ; now: page ((round * 7) mod 24) * n + (i + 1) mod n (every vCPU owns 24
    ; pages at least); whether it moved is not ours to check, its owner
    ; checks its contents.
    mov rax, r14
    imul rax, 7
    xor edx, edx
    mov rcx, 24
    div rcx
    mov rax, rdx
    mul r13
    mov rcx, r12
    inc rcx
    cmp rcx, r13
    jb .next
    xor ecx, ecx
.next:
    add rax, rcx
    shl rax, 12
    add rax, BASE
    mov rbx, rax
    mov ecx, r14d
    not ecx
    and ecx, 1
    mov eax, HC_MIGRATE
    vmcall
    inc r14
    cmp r14, ROUNDS
    jbe .round
    dec r14
    REPORT r14d, 1
    BARRIER
    hlt
