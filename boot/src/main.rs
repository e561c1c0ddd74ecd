//! The bootable hypervisor image: multiboot headers, the 32-bit to long-mode trampoline,
//! and the hand-off to `hypervisor::start`.
//!
//! Loaders: QEMU's `-kernel` (multiboot1, through the header's address fields, since it
//! refuses 64-bit ELF files) and GRUB (multiboot2, address and entry tags). Both load the
//! one PT_LOAD segment of `link.ld` at physical 0x200000 and enter `start32` in 32-bit
//! protected mode with paging off.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod image {
    core::arch::global_asm!(
        r#"
        .set KOFF, 0xFFFF82D040000000
        .set MB1_MAGIC, 0x1BADB002
        /* page-align modules | memory info | address fields valid */
        .set MB1_FLAGS, 0x00010003
        .set MB2_MAGIC, 0xE85250D6

        .section .multiboot, "a"
        .balign 4
    mb1_header:
        .long MB1_MAGIC
        .long MB1_FLAGS
        .long 0x100000000 - (MB1_MAGIC + MB1_FLAGS)
        .long mb1_header - KOFF          /* header_addr */
        .long __image_start - KOFF       /* load_addr */
        .long __data_end - KOFF          /* load_end_addr */
        .long __image_end - KOFF         /* bss_end_addr */
        .long start32 - KOFF             /* entry_addr */

        .balign 8
    mb2_header:
        .long MB2_MAGIC
        .long 0                          /* architecture: i386 protected mode */
        .long mb2_header_end - mb2_header
        .long 0x100000000 - (MB2_MAGIC + (mb2_header_end - mb2_header))
        /* address tag */
        .balign 8
        .word 2, 0
        .long 24
        .long mb2_header - KOFF
        .long __image_start - KOFF
        .long __data_end - KOFF
        .long __image_end - KOFF
        /* entry address tag */
        .balign 8
        .word 3, 0
        .long 12
        .long start32 - KOFF
        /* module alignment tag: page-aligned modules */
        .balign 8
        .word 6, 0
        .long 8
        /* end tag */
        .balign 8
        .word 0, 0
        .long 8
    mb2_header_end:

        .section .text.boot, "ax"
        .code32
        .global start32
    start32:
        cli
        cld
        mov %eax, %edi                   /* loader magic: first argument */
        mov %ebx, %esi                   /* loader info (physical): second argument */
        mov $(boot_stack_top - KOFF), %esp

        /* Long mode present? */
        mov $0x80000000, %eax
        cpuid
        cmp $0x80000001, %eax
        jb no_long_mode
        mov $0x80000001, %eax
        cpuid
        bt $29, %edx
        jnc no_long_mode

        /* CR4.PAE, then the boot page tables, then EFER.LME, then CR0.PG|WP|PE. */
        mov %cr4, %eax
        or $(1 << 5), %eax
        mov %eax, %cr4
        mov $(boot_pml4 - KOFF), %eax
        mov %eax, %cr3
        mov $0xC0000080, %ecx
        rdmsr
        or $(1 << 8), %eax
        wrmsr
        mov %cr0, %eax
        or $0x80010001, %eax
        mov %eax, %cr0

        lgdt (boot_gdt_ptr - KOFF)
        ljmp $0x08, $(start64_low - KOFF)

    no_long_mode:
        mov $(no_lm_msg - KOFF), %ebx
    1:  movb (%ebx), %al
        test %al, %al
        jz 3f
        mov $0x3fd, %dx
    2:  inb %dx, %al
        test $0x20, %al
        jz 2b
        movb (%ebx), %al
        mov $0x3f8, %dx
        outb %al, %dx
        inc %ebx
        jmp 1b
    3:  hlt
        jmp 3b

        .code64
    start64_low:
        movabs $start64, %rax
        jmp *%rax
    start64:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        movabs $boot_stack_top, %rsp
        xor %ebp, %ebp
        /* rdi = magic, rsi = info (zero-extended by the 32-bit moves above) */
        call boot_rust_entry
    4:  hlt
        jmp 4b

        .section .rodata
    no_lm_msg:
        .asciz "hypervisor: this CPU has no long mode (x86_64); cannot boot\r\n"
        .balign 8
    boot_gdt:
        .quad 0
        .quad 0x00af9a000000ffff          /* 0x08: 64-bit code, DPL 0 */
        .quad 0x00cf92000000ffff          /* 0x10: data, DPL 0 */
    boot_gdt_end:
    boot_gdt_ptr:
        .word boot_gdt_end - boot_gdt - 1
        .long boot_gdt - KOFF

        /*
         * Boot page tables: the first 4 GiB with 2 MiB pages, mapped three times:
         * identity (for the switch to long mode and the AP trampoline), at the direct
         * map 0xFFFF830000000000 (L4 slot 262), and the first GiB at the image's base
         * 0xFFFF82D040000000 (L4 slot 261, L3 slot 321). The hypervisor replaces them
         * with its own tables early in `hypervisor::start`.
         */
        .section .data.boot_pt, "aw"
        .balign 4096
        .global boot_pml4
    boot_pml4:
        .quad boot_pdpt_low - KOFF + 0x3
        .fill 260, 8, 0
        .quad boot_pdpt_text - KOFF + 0x3
        .quad boot_pdpt_dmap - KOFF + 0x3
        .fill 249, 8, 0
    boot_pdpt_low:
        .quad boot_pd - KOFF + 0x0003
        .quad boot_pd - KOFF + 0x1003
        .quad boot_pd - KOFF + 0x2003
        .quad boot_pd - KOFF + 0x3003
        .fill 508, 8, 0
    boot_pdpt_dmap:
        .quad boot_pd - KOFF + 0x0003
        .quad boot_pd - KOFF + 0x1003
        .quad boot_pd - KOFF + 0x2003
        .quad boot_pd - KOFF + 0x3003
        .fill 508, 8, 0
    boot_pdpt_text:
        .fill 321, 8, 0
        .quad boot_pd - KOFF + 0x3
        .fill 190, 8, 0
    boot_pd:
        .set i, 0
        .rept 2048
        .quad (i << 21) | 0x83
        .set i, i + 1
        .endr

        .section .bss.boot_stack, "aw", @nobits
        .balign 4096
        .global boot_stack_bottom
    boot_stack_bottom:
        .skip 65536
        .global boot_stack_top
    boot_stack_top:
        "#,
        options(att_syntax)
    );

    /// Called by `start64` on the boot stack, with the loader's magic and info address.
    #[no_mangle]
    extern "C" fn boot_rust_entry(magic: u32, info: u32) -> ! {
        hypervisor::start(magic, info)
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        hypervisor::panic(info)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the hypervisor image is built for x86_64-unknown-none: run `cargo xtask build`");
}
