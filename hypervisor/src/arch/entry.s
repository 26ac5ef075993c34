/*
 * Boot entry: both loaders enter here in 32-bit protected mode with paging
 * off. This code zeroes .bss, builds identity page tables for the first
 * 4 GiB (2 MiB pages), enters long mode and calls `kernel_entry(magic, info)`.
 * Assembled by rustc's global_asm! in AT&T syntax.
 */

/* Multiboot2 header (GRUB); must lie in the first 32 KiB of the image. */
    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long 0xe85250d6                                   /* magic */
    .long 0                                            /* architecture: i386 */
    .long mb2_header_end - mb2_header                  /* header length */
    .long 0x100000000 - (0xe85250d6 + (mb2_header_end - mb2_header))
    .balign 8
    .short 0, 0                                        /* end tag */
    .long 8
mb2_header_end:

/* PVH entry point (QEMU -kernel): Xen ELF note type 18, PHYS32_ENTRY. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                                            /* name size */
    .long 8                                            /* descriptor size */
    .long 18                                           /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_entry, 0                                 /* QEMU reads 8 bytes */

    .section .boot.text, "ax"
    .code32
    .globl multiboot2_entry
multiboot2_entry:
    cli
    cld
    movl %eax, boot_magic                              /* 0x36d76289 */
    movl %ebx, boot_info                               /* multiboot2 info */
    jmp common32

    .globl pvh_entry
pvh_entry:
    cli
    cld
    movl $0x336ec578, boot_magic                       /* the start-info magic names PVH */
    movl %ebx, boot_info                               /* hvm_start_info */

common32:
    /* Loaders zero .bss, but nothing obliges them to. */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl $boot_stack_top, %esp

    /* Long mode present? */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    btl $29, %edx
    jnc no_long_mode

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories of 2 MiB pages. */
    movl $boot_pdpt + 0x3, boot_pml4
    movl $boot_pd + 0x3, %eax
    movl %eax, boot_pdpt
    addl $0x1000, %eax
    movl %eax, boot_pdpt + 8
    addl $0x1000, %eax
    movl %eax, boot_pdpt + 16
    addl $0x1000, %eax
    movl %eax, boot_pdpt + 24
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax                                    /* present, writable, 2 MiB */
    movl %eax, boot_pd(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 1b

    /* SSE must work before any Rust code: the prebuilt core uses it. */
    movl %cr4, %eax
    orl $(1 << 5 | 1 << 9 | 1 << 10), %eax             /* PAE, OSFXSR, OSXMMEXCPT */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx                             /* EFER.LME */
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    movl %cr0, %eax
    andl $~(1 << 2), %eax                              /* clear EM */
    orl $(1 << 31 | 1 << 1 | 1), %eax                  /* PG, MP, PE */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

no_long_mode:
    /* Without long mode nothing else can run: say so raw and power off. */
    movl $no_long_mode_msg, %esi
2:  movb (%esi), %al
    testb %al, %al
    jz 3f
    movw $0x2f8, %dx                                   /* COM2: the hypervisor's console */
    outb %al, %dx
    incl %esi
    jmp 2b
3:  movw $0xf4, %dx
    movl $0x11, %eax                                   /* ExitCode::Failure */
    outl %eax, %dx
    movl $shutdown_msg, %esi
    movw $0x8900, %dx
4:  movb (%esi), %al
    testb %al, %al
    jz 5f
    outb %al, %dx
    incl %esi
    jmp 4b
5:  hlt
    jmp 5b

    .code64
long_mode_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    movl boot_magic(%rip), %edi
    movl boot_info(%rip), %esi
    call kernel_entry
6:  cli
    hlt
    jmp 6b

    .section .rodata
no_long_mode_msg:
    /* Braces are doubled: this file is a global_asm! template. */
    .asciz "\n@sv {{\"ev\":\"error\",\"stage\":\"entry\",\"message\":\"CPU has no long mode\",\"fatal\":true}}\n"
shutdown_msg:
    .asciz "Shutdown"

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                           /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                           /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .data
    .balign 4
boot_magic: .long 0
boot_info:  .long 0

    /* The stack comes first in .bss, so that an overflow cannot reach the
     * page tables above it (there is no guard page yet: 2 MiB pages). */
    .section .bss.stack, "aw", @nobits
    .balign 4096
boot_stack: .skip 256 * 1024
    .globl boot_stack_top
boot_stack_top:

    .section .bss, "aw", @nobits
    .balign 4096
boot_pml4:  .skip 4096
    .globl boot_pdpt                /* extended past 4 GiB by phys::extend_direct_map */
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
