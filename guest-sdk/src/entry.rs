//! ELF notes, the hypercall page, `_start`, and the boot sequence up to the guest's main.
//!
//! Xen (or our hypervisor) builds the domain from the ELF notes below, fills the
//! hypercall page, and jumps to `_start` in 64-bit mode, CS = `FLAT_KERNEL_CS`, with
//! `rsi` = virtual address of `start_info` and `rsp` at the top of a bootstrap stack.
//! `_start` switches to the SDK's own stack and calls [`sdk_start`], which copies
//! `start_info`, installs the trap table and callbacks, maps `shared_info`, sets up the
//! heap, calls the guest's main (named with [`entry!`](crate::entry!)), and powers the
//! domain off when it returns.

pub use xen_abi::xen::StartInfo;

/// Name the guest's main function: `guest_sdk::entry!(guest_main);` with
/// `fn guest_main(si: &'static guest_sdk::StartInfo)`. When it returns, the domain is
/// powered off. Expands to nothing unless built for `target_os = "none"`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[cfg(target_os = "none")]
        #[no_mangle]
        extern "C" fn __guest_sdk_main(si: &'static $crate::StartInfo) {
            let f: fn(&'static $crate::StartInfo) = $main;
            f(si)
        }
    };
}

static START_INFO: spin::Once<StartInfo> = spin::Once::new();
static BOOT: spin::Once<BootInfo> = spin::Once::new();

/// Facts about the start of day besides `start_info` itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootInfo {
    /// Virtual address of the hypervisor's `start_info` page (for dom0, it also holds
    /// the `dom0_vga_console_info` at `console.dom0.info_off`).
    pub start_info_va: u64,
    /// `rsp` the hypervisor started us with (top of its bootstrap stack).
    pub initial_rsp: u64,
}

/// The guest's copy of `start_info` (read once, at boot). Panics if called before boot.
pub fn start_info() -> &'static StartInfo {
    START_INFO
        .get()
        .unwrap_or_else(|| panic!("start_info() before boot"))
}

/// Start-of-day facts. Panics if called before boot.
pub fn boot_info() -> &'static BootInfo {
    BOOT.get()
        .unwrap_or_else(|| panic!("boot_info() before boot"))
}

/// First byte after the start-of-day bootstrap elements (page tables, then the bootstrap
/// stack), per `xen.h`'s "initial memory layout": the stack follows the
/// `nr_pt_frames` page-table frames at `pt_base`, and `initial_rsp` is at or below its top.
pub fn bootstrap_end(si: &StartInfo, initial_rsp: u64) -> u64 {
    let pt_end = si.pt_base + si.nr_pt_frames * 4096;
    let stack_end = (initial_rsp + 4095) & !4095;
    pt_end.max(stack_end).max(pt_end + 4096)
}

/// End of the start-of-day virtual region: the next 4 MiB boundary, which xen.h
/// guarantees leaves at least 512 KiB of mapped padding after `bootstrap_end`.
pub fn region_end(bootstrap_end: u64) -> u64 {
    const FOUR_MIB: u64 = 4 << 20;
    let end = (bootstrap_end + FOUR_MIB - 1) & !(FOUR_MIB - 1);
    if end - bootstrap_end < (512 << 10) {
        end + FOUR_MIB
    } else {
        end
    }
}

/// Rust side of `_start`.
///
/// # Safety
/// Called once, by `_start`, with the `rsi` and `rsp` the hypervisor started us with.
#[cfg(target_os = "none")]
#[no_mangle]
unsafe extern "C" fn sdk_start(si_va: u64, initial_rsp: u64) -> ! {
    extern "C" {
        fn __guest_sdk_main(si: &'static StartInfo);
    }
    // SAFETY: the ABI guarantees `rsi` points at a mapped, readable `start_info` page;
    // nothing writes it concurrently at boot, and we copy it once.
    let si =
        START_INFO.call_once(|| unsafe { core::ptr::read_volatile(si_va as *const StartInfo) });
    BOOT.call_once(|| BootInfo {
        start_info_va: si_va,
        initial_rsp,
    });
    if !si.magic_ok() {
        crate::println!("guest-sdk: warning: unexpected start_info magic");
    }
    if let Err(e) = crate::traps::init() {
        panic!("set_trap_table failed: {e:?}");
    }
    if let Err(e) = crate::events::init() {
        panic!("registering callbacks failed: {e:?}");
    }
    if let Err(e) = crate::shared::init(si) {
        panic!("mapping shared_info failed: {e:?}");
    }
    #[cfg(feature = "heap")]
    {
        let start = bootstrap_end(si, initial_rsp);
        crate::heap::init(start, region_end(start));
    }
    // SAFETY: `__guest_sdk_main` is defined by the guest's `entry!` with this signature.
    unsafe { __guest_sdk_main(si) };
    crate::sched::poweroff()
}

// The ELF notes, the hypercall page, the SDK stack and `_start`, in one block so that the
// linker pulls them in together with the entry point.
#[cfg(target_os = "none")]
core::arch::global_asm!(
    // ---- ELF notes (xen/elfnote.h): namesz 4 "Xen\0", 4-byte aligned descriptors ----
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4, 2f - 1f, {GUEST_OS}",
    ".asciz \"Xen\"",
    "1: .asciz \"rust-guest-sdk\"",
    "2: .balign 4",
    ".long 4, 2f - 1f, {GUEST_VERSION}",
    ".asciz \"Xen\"",
    "1: .asciz \"0.1\"",
    "2: .balign 4",
    ".long 4, 2f - 1f, {XEN_VERSION}",
    ".asciz \"Xen\"",
    "1: .asciz \"xen-3.0\"",
    "2: .balign 4",
    ".long 4, 2f - 1f, {LOADER}",
    ".asciz \"Xen\"",
    "1: .asciz \"generic\"",
    "2: .balign 4",
    ".long 4, 2f - 1f, {VIRT_BASE}",
    ".asciz \"Xen\"",
    "1: .quad {KERNEL_BASE}",
    "2: .balign 4",
    ".long 4, 2f - 1f, {PADDR_OFFSET}",
    ".asciz \"Xen\"",
    "1: .quad {KERNEL_BASE}",
    "2: .balign 4",
    ".long 4, 2f - 1f, {ENTRY}",
    ".asciz \"Xen\"",
    "1: .quad _start",
    "2: .balign 4",
    ".long 4, 2f - 1f, {HYPERCALL_PAGE}",
    ".asciz \"Xen\"",
    "1: .quad sdk_hypercall_page",
    "2: .balign 4",
    ".popsection",
    // ---- the hypercall page, filled by the hypervisor at domain build ----
    ".pushsection .text.sdk_hypercall_page, \"ax\", @progbits",
    ".balign 4096",
    ".globl sdk_hypercall_page",
    "sdk_hypercall_page:",
    ".fill 4096, 1, 0xcc",
    ".popsection",
    // ---- the SDK's boot stack ----
    ".pushsection .bss.sdk_stack, \"aw\", @nobits",
    ".balign 4096",
    "sdk_stack_bottom:",
    ".skip {STACK_SIZE}",
    "sdk_stack_top:",
    ".popsection",
    // ---- _start: rsi = start_info, rsp = bootstrap stack ----
    ".pushsection .text.sdk_entry, \"ax\", @progbits",
    ".globl _start",
    "_start:",
    "cld",
    "mov %rsi, %rdi",
    "mov %rsp, %rsi",
    "lea sdk_stack_top(%rip), %rsp",
    "xor %ebp, %ebp",
    "call sdk_start",
    "ud2",
    ".popsection",
    GUEST_OS = const xen_abi::elfnote::XEN_ELFNOTE_GUEST_OS,
    GUEST_VERSION = const xen_abi::elfnote::XEN_ELFNOTE_GUEST_VERSION,
    XEN_VERSION = const xen_abi::elfnote::XEN_ELFNOTE_XEN_VERSION,
    LOADER = const xen_abi::elfnote::XEN_ELFNOTE_LOADER,
    VIRT_BASE = const xen_abi::elfnote::XEN_ELFNOTE_VIRT_BASE,
    PADDR_OFFSET = const xen_abi::elfnote::XEN_ELFNOTE_PADDR_OFFSET,
    ENTRY = const xen_abi::elfnote::XEN_ELFNOTE_ENTRY,
    HYPERCALL_PAGE = const xen_abi::elfnote::XEN_ELFNOTE_HYPERCALL_PAGE,
    KERNEL_BASE = const crate::KERNEL_BASE,
    STACK_SIZE = const STACK_SIZE,
    options(att_syntax),
);

/// Size of the SDK's boot stack (the guest's main runs on it).
pub const STACK_SIZE: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_region_follows_bootstrap_stack() {
        let mut si = StartInfo::ZERO;
        si.pt_base = 0xFFFF_FFFF_8040_0000;
        si.nr_pt_frames = 6;
        let rsp = si.pt_base + 7 * 4096;
        let start = bootstrap_end(&si, rsp);
        assert_eq!(start, si.pt_base + 7 * 4096);
        let end = region_end(start);
        assert_eq!(end, 0xFFFF_FFFF_8080_0000);
        assert!(end - start >= 512 << 10);
    }

    #[test]
    fn region_end_adds_4mib_when_padding_is_short() {
        let b = 0xFFFF_FFFF_807F_0000;
        assert_eq!(region_end(b), 0xFFFF_FFFF_80C0_0000);
        let b = 0xFFFF_FFFF_8080_0000;
        assert_eq!(region_end(b), 0xFFFF_FFFF_80C0_0000);
    }
}
