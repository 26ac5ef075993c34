; A page migrated back and forth between nodes while another vCPU writes it:
; vCPU 1 increments a counter in it COUNT times (and makes a round trip to
; the hypervisor every 256, so that every emulator brings it out for TLB
; flushes), vCPU 0 moves the page to the other node again and again until
; vCPU 1 is done. Every 8 rounds of 256 the writer waits for one more move,
; so that moves overlap the writes however the two are scheduled. The
; hypervisor write-protects the page while it copies: no increment may be
; lost, and the rest of the page keeps its contents.
bits 64
org 0x8000
%include "hypercall.inc"
%include "assert.inc"

%define PAGE 0x200000           ; the migrated page: counter at +0, a pattern at +8
%define DONE 0x300000           ; vCPU 1's "done" flag, on another page
%define MOVES DONE + 8           ; vCPU 0's count of moves
%define COUNT 20000

    mov r12, rdi                    ; this vCPU's index
    test r12, r12
    jnz .writer
    mov qword [PAGE], 0
    mov rax, 0x5eed5eed
    mov [PAGE + 8], rax
    mov qword [DONE], 0
    mov qword [MOVES], 0
    BARRIER
    xor r13, r13                    ; migrations made
.move:
    mov eax, HC_MIGRATE
    mov ebx, PAGE
    mov ecx, r13d
    and ecx, 1
    xor ecx, 1                      ; node 1, then 0, then 1...
    vmcall
    ASSERT_EQ(rax, 0)
    inc r13
    mov [MOVES], r13
    cmp qword [DONE], 0
    je .move
    BARRIER
    mov rax, [PAGE]
    ASSERT_EQ(rax, COUNT)           ; no increment lost
    mov rax, [PAGE + 8]
    ASSERT_EQ(rax, 0x5eed5eed)      ; the contents moved with the page
    REPORT64 r13, 2                 ; how many migrations overlapped the writes
    hlt

.writer:
    BARRIER
    mov ecx, COUNT
    xor r14, r14                    ; rounds of 256 done
.increment:
    inc qword [PAGE]
    test ecx, 0xff
    jnz .next
    push rcx
    inc r14
    mov r15, r14
    shr r15, 3                      ; wait for a move every 8 rounds
.wait:
    mov eax, HC_NOP                 ; a round trip: TLB flushes are answered
    vmcall
    cmp [MOVES], r15
    jb .wait
    pop rcx
.next:
    dec ecx
    jnz .increment
    mov qword [DONE], 1
    BARRIER
    REPORT 1, 1
    hlt
