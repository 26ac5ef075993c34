/*
 * The application processors' first code: copied to TRAMPOLINE (0x7000,
 * SIPI vector 7), entered in real mode at 0700:0000. It switches to
 * protected mode, then long mode on the kernel's page tables, and calls
 * the entry in the mailbox at the end of its page. Addresses are computed
 * from label differences, so the code runs wherever the page is.
 * Braces are doubled: this file is a global_asm! template.
 */
    .set TRAMPOLINE, 0x7000
    .set MAILBOX, TRAMPOLINE + 0xf00        /* cr3, stack, entry, cpu index, apic base flags */

    .section .rodata.trampoline, "a"
    .globl ap_trampoline_start
    .globl ap_trampoline_end
    .code16
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl TRAMPOLINE + (ap_gdt_ptr - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(TRAMPOLINE + (ap_pm32 - ap_trampoline_start))

    .code32
ap_pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $(1 << 5 | 1 << 9 | 1 << 10), %eax  /* PAE, OSFXSR, OSXMMEXCPT */
    movl %eax, %cr4
    movl MAILBOX, %eax                       /* the kernel's PML4 (below 4 GiB) */
    movl %eax, %cr3
    movl $0xc0000080, %ecx                   /* EFER.LME */
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    movl %cr0, %eax
    andl $~(1 << 2), %eax                    /* clear EM */
    orl $(1 << 31 | 1 << 1 | 1), %eax        /* PG, MP, PE */
    movl %eax, %cr0
    ljmpl $0x18, $(TRAMPOLINE + (ap_lm64 - ap_trampoline_start))

    .code64
ap_lm64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq MAILBOX + 8, %rsp
    movq MAILBOX + 24, %rdi
    movq MAILBOX + 16, %rax
    call *%rax
1:  cli
    hlt
    jmp 1b

    .balign 8
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                 /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff                 /* 0x10: data */
    .quad 0x00af9a000000ffff                 /* 0x18: 64-bit code */
ap_gdt_ptr:
    .short ap_gdt_ptr - ap_gdt - 1
    .long TRAMPOLINE + (ap_gdt - ap_trampoline_start)
ap_trampoline_end:
