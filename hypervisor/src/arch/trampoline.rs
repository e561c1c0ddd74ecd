//! The AP trampoline: real mode → protected mode → long mode, copied below 1 MiB.
//!
//! A Startup IPI with vector `v` starts an AP in real mode at `v << 12` (CS = `v << 8`,
//! IP = 0), so the code is position-dependent only through `TRAMPOLINE_PA`, which the
//! assembly adds to label offsets. It loads its own small GDT, turns on protection,
//! then PAE, the boot page tables (`CR3` parameter; they identity-map the first 4 GiB
//! so the code keeps running after paging is on), EFER.LME (and NXE when the CPU has
//! it), paging, and far-jumps to 64-bit code that takes its stack and logical CPU id
//! from the parameter block and calls `ap_entry64` at its linked (high) address.
//!
//! The boot CPU fills the parameter block before each AP's INIT-SIPI-SIPI and waits
//! for that AP to come online before reusing it, so one block is enough.

use crate::mem;

/// Where the trampoline runs: a page in the first MiB, which the frame allocator never
/// hands out. Must be 4 KiB-aligned and below 1 MiB (the SIPI vector is `pa >> 12`).
pub const TRAMPOLINE_PA: u64 = 0x8000;
const _: () = assert!(TRAMPOLINE_PA.is_multiple_of(4096) && TRAMPOLINE_PA < 0x10_0000);

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .balign 16
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (tr_gdt_ptr - ap_trampoline_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $({pa} + tr_pm32 - ap_trampoline_start)

    .code32
tr_pm32:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    /* CR4.PAE, then the page tables. */
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov ({pa} + ap_tramp_cr3 - ap_trampoline_start), %eax
    mov %eax, %cr3
    /* NX supported? (CPUID 0x80000001 EDX bit 20) */
    mov $0x80000001, %eax
    cpuid
    mov %edx, %ebx
    /* EFER.LME, and NXE when supported. */
    mov $0xC0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    bt $20, %ebx
    jnc 1f
    or $(1 << 11), %eax
1:  wrmsr
    /* CR0.PG | WP | PE */
    mov %cr0, %eax
    or $0x80010001, %eax
    mov %eax, %cr0
    ljmp $0x18, $({pa} + tr_lm64 - ap_trampoline_start)

    .code64
tr_lm64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov ({pa} + ap_tramp_stack - ap_trampoline_start), %rsp
    mov ({pa} + ap_tramp_cpu - ap_trampoline_start), %rdi
    xor %ebp, %ebp
    movabs ${entry}, %rax
    call *%rax
2:  cli
    hlt
    jmp 2b

    .balign 8
tr_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff          /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff          /* 0x10: data */
    .quad 0x00af9a000000ffff          /* 0x18: 64-bit code */
tr_gdt_end:
    .balign 4
    .word 0
tr_gdt_ptr:
    .word tr_gdt_end - tr_gdt - 1
    .long {pa} + tr_gdt - ap_trampoline_start

    .balign 8
    .global ap_tramp_cr3
ap_tramp_cr3:
    .quad 0
    .global ap_tramp_stack
ap_tramp_stack:
    .quad 0
    .global ap_tramp_cpu
ap_tramp_cpu:
    .quad 0
    .global ap_trampoline_end
ap_trampoline_end:
    .text
    "#,
    pa = const TRAMPOLINE_PA,
    entry = sym ap_entry64,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_tramp_cr3: u8;
    static ap_tramp_stack: u8;
    static ap_tramp_cpu: u8;
}

/// Entered by each AP on its own stack, in long mode on the boot page tables.
extern "C" fn ap_entry64(cpu: u64) -> ! {
    crate::smp::ap_main(cpu as usize)
}

/// The offset of a trampoline symbol from its start (only addresses are taken).
fn offset(sym: *const u8) -> usize {
    sym as usize - core::ptr::addr_of!(ap_trampoline_start) as usize
}

fn len() -> usize {
    offset(core::ptr::addr_of!(ap_trampoline_end))
}

/// Copy the trampoline to `TRAMPOLINE_PA`; returns the SIPI vector that starts it.
pub fn install() -> u8 {
    let src = core::ptr::addr_of!(ap_trampoline_start);
    let dst = mem::phys_to_virt(TRAMPOLINE_PA) as *mut u8;
    const _: () = assert!(TRAMPOLINE_PA < mem::MAX_PHYS);
    // SAFETY:
    // 1. The source is the trampoline's bytes in the image (`len()` of them, between
    //    two labels of the same section).
    // 2. The destination is in the first MiB, which the frame allocator never hands out
    //    and nothing else uses after boot (the loader's structures were copied out by
    //    `multiboot::parse`); the direct map maps it writable; `len()` is far below a
    //    page (checked by the assertion below), so the copy stays in the page.
    unsafe {
        assert!(len() <= 4096, "AP trampoline larger than a page");
        core::ptr::copy_nonoverlapping(src, dst, len());
    }
    (TRAMPOLINE_PA >> 12) as u8
}

/// Fill the trampoline's parameter block for the next AP.
pub fn set_params(cr3: u64, stack_top: u64, cpu: usize) {
    let base = mem::phys_to_virt(TRAMPOLINE_PA);
    let slots = [
        (offset(core::ptr::addr_of!(ap_tramp_cr3)), cr3),
        (offset(core::ptr::addr_of!(ap_tramp_stack)), stack_top),
        (offset(core::ptr::addr_of!(ap_tramp_cpu)), cpu as u64),
    ];
    for (off, val) in slots {
        // SAFETY: `install` copied the trampoline to this page; the slots are 8-byte
        // aligned `.quad`s inside it (offsets below `len()`), and no AP is reading them
        // now (the boot CPU starts APs one at a time and waits for each to come online
        // before calling this again). Volatile: the AP reads them without our knowledge.
        unsafe { core::ptr::write_volatile((base + off as u64) as *mut u64, val) };
    }
}
