//! What every attack needs: surviving the faults it provokes, scratch pages, raw
//! hypercalls, the addresses that belong to the hypervisor, and the verdict helpers.
//!
//! # Recovering from a fault
//! [`guarded!`](crate::guarded) records where to resume (the label after the code under
//! test) and the stack pointer to resume with, then runs the code. The handler installed
//! by [`install`] for every exception records what the hypervisor delivered and, if a
//! guarded block is armed, resumes there with the recorded stack pointer (whatever the
//! code under test pushed, or whatever frames the hypervisor stacked, is dropped). A
//! fault outside a guarded block is a bug: the SDK prints the frame and crashes the
//! domain. [`catch_failsafe`] does the same for Xen's failsafe callback (a return to
//! the guest that the CPU refused, e.g. a bad code selector in an `iret` frame).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use guest_sdk::hypercall;
use guest_sdk::mm::{self, make_pte, pte_mfn, PAGE_KERNEL, PAGE_KERNEL_RO};
use guest_sdk::traps::{self, Resume, TrapFrame};
use xen_abi::errno::*;
use xen_abi::mm::{HYPERVISOR_L4_FIRST, HYPERVISOR_L4_LAST, PAGE_SIZE, PTE_PRESENT, UVMF_INVLPG};

/// The outcome of one attack: `Ok(how it was refused)` or `Err(what went wrong)`.
pub type Outcome = Result<String, String>;

/// A hypercall's answer: its value or its errno.
pub type Answer = Result<u64, Errno>;

/// One call of an attack: what it was, our answer, Xen 4.17's.
pub type Case = (String, Answer, Answer);

// ---------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------

/// Start of the hypervisor's range: the read-only M2P table, which the guest may read
/// but the hypervisor must never take as a hypercall argument (`__addr_ok`).
pub const M2P: u64 = 0xFFFF_8000_0000_0000;
/// Xen 4.17's text (`XEN_VIRT_START + 2 MiB`, L4 slot 261); our hypervisor's image
/// runs at the same address.
pub const XEN_TEXT: u64 = 0xFFFF_82D0_4020_0000;
/// Xen's direct map of all RAM (L4 slot 262).
pub const DIRECTMAP: u64 = 0xFFFF_8300_0010_0000;
/// The first non-canonical address above the lower half.
pub const NONCANON: u64 = 0x0000_8000_0000_0000;
/// An address no PV guest has mapped (lower half, L4 slot 36).
pub const UNMAPPED: u64 = 0x0000_1234_5678_9000;

/// Pointers a hypercall must refuse (`-EFAULT`), with a name for the report.
pub const BAD_POINTERS: [(&str, u64); 4] = [
    ("M2P", M2P),
    ("Xen text", XEN_TEXT),
    ("directmap", DIRECTMAP),
    ("non-canonical", NONCANON),
];

/// The code selector Xen's GDT uses for itself (ring 0).
pub const XEN_CS: u64 = 0xe008;

// ---------------------------------------------------------------------------------------
// Guarded execution
// ---------------------------------------------------------------------------------------

/// Where a fault inside a guarded block resumes (0: no block armed).
pub static RESUME_RIP: AtomicU64 = AtomicU64::new(0);
/// The stack pointer it resumes with.
pub static RESUME_RSP: AtomicU64 = AtomicU64::new(0);

static FAULTS: AtomicU64 = AtomicU64::new(0);
static LAST: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
static FAILSAFES: AtomicU64 = AtomicU64::new(0);
/// Written by the failsafe stub: the `rip` and `cs` of the refused return.
pub static FAILSAFE_RIP: AtomicU64 = AtomicU64::new(0);
pub static FAILSAFE_CS: AtomicU64 = AtomicU64::new(0);

/// Run code that may fault; a fault resumes after it with the stack pointer it started
/// with. The code is one string literal or a bracketed list of them; extra `asm!`
/// operands follow, each preceded by a comma. Clobbers `r11`. Must be used inside an
/// `unsafe` block; label `9` (the resume point) is taken.
#[macro_export]
macro_rules! guarded {
    ([$($insn:literal),+ $(,)?] $($rest:tt)*) => {{
        core::arch::asm!(
            "lea 9f(%rip), %r11",
            "mov %r11, {resume}(%rip)",
            "mov %rsp, {rsp}(%rip)",
            $($insn,)+
            "9:",
            options(att_syntax),
            resume = sym $crate::support::RESUME_RIP,
            rsp = sym $crate::support::RESUME_RSP,
            out("r11") _
            $($rest)*
        );
        $crate::support::RESUME_RIP.store(0, core::sync::atomic::Ordering::SeqCst);
    }};
    ($insn:literal $($rest:tt)*) => {{
        core::arch::asm!(
            "lea 9f(%rip), %r11",
            "mov %r11, {resume}(%rip)",
            "mov %rsp, {rsp}(%rip)",
            $insn,
            "9:",
            options(att_syntax),
            resume = sym $crate::support::RESUME_RIP,
            rsp = sym $crate::support::RESUME_RSP,
            out("r11") _
            $($rest)*
        );
        $crate::support::RESUME_RIP.store(0, core::sync::atomic::Ordering::SeqCst);
    }};
}

/// What the hypervisor delivered for the last fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub count: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cr2: u64,
    pub cs: u64,
}

/// Install [`on_fault`] for every vector the SDK handles except `#BP`.
pub fn install() {
    for v in [0u8, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19] {
        traps::set_handler(v, on_fault);
    }
}

/// Forget earlier faults and failsafe callbacks.
pub fn reset_seen() {
    FAULTS.store(0, SeqCst);
    FAILSAFES.store(0, SeqCst);
    for a in LAST.iter() {
        a.store(0, SeqCst);
    }
}

/// Faults since [`reset_seen`], with the last one.
pub fn seen() -> Seen {
    let g = |i: usize| LAST.get(i).map_or(0, |a| a.load(SeqCst));
    Seen {
        count: FAULTS.load(SeqCst),
        vector: g(0),
        error_code: g(1),
        rip: g(2),
        cr2: g(3),
        cs: g(4),
    }
}

/// Failsafe callbacks since [`reset_seen`].
pub fn failsafes() -> u64 {
    FAILSAFES.load(SeqCst)
}

fn on_fault(f: &mut TrapFrame) -> Resume {
    let cr2 = guest_sdk::shared::cr2(0).unwrap_or(0);
    for (slot, v) in LAST
        .iter()
        .zip([f.vector, f.error_code, f.rip, cr2, f.cs & 0xffff])
    {
        slot.store(v, SeqCst);
    }
    FAULTS.fetch_add(1, SeqCst);
    let resume = RESUME_RIP.swap(0, SeqCst);
    if resume != 0 {
        // Resume with the flat kernel selectors: the fault may have come from a return
        // with a bad code selector (a forged `iret` frame), which must not be reused.
        f.rip = resume;
        f.rsp = RESUME_RSP.load(SeqCst);
        // RPL 0 in an `iret` frame means "back to guest kernel mode" (RPL 3 would be a
        // switch to user mode).
        f.cs = (f.cs & !0xffff) | u64::from(xen_abi::mm::FLAT_KERNEL_CS & !3);
        f.ss = u64::from(xen_abi::mm::FLAT_KERNEL_SS);
        return Resume::Continue;
    }
    Resume::Crash
}

/// Read 8 bytes at `va`, or `None` if that faults.
pub fn peek(va: u64) -> Option<u64> {
    reset_seen();
    let mut v: u64 = 0;
    // SAFETY: a load; if `va` is not readable the fault resumes after it (guarded).
    unsafe { guarded!("mov (%rcx), %rdx", in("rcx") va, inout("rdx") v) };
    (seen().count == 0).then_some(v)
}

/// Register our failsafe callback (which counts, records and resumes at the armed
/// guarded block) instead of the SDK's (which crashes the domain).
pub fn catch_failsafe() -> Result<(), Errno> {
    extern "C" {
        static attacker_failsafe: u8;
    }
    hypercall::callback_register(&xen_abi::callback::CallbackRegister {
        type_: xen_abi::callback::CALLBACKTYPE_FAILSAFE,
        flags: xen_abi::callback::CALLBACKF_MASK_EVENTS,
        _pad: 0,
        address: (&raw const attacker_failsafe) as u64,
    })
}

/// Put the SDK's event and failsafe callbacks back.
pub fn restore_callbacks() {
    if let Err(e) = guest_sdk::events::init() {
        guest_sdk::println!("attacker: cannot restore the SDK's callbacks: -{}", e.0);
    }
}

// Failsafe frame (low to high): rcx, r11, ds, es, fs, gs, rip, cs, rflags, rsp, ss.
// Record it, then `iret` (through the hypercall page) to the armed guarded block with
// its stack pointer, the flat kernel selectors (RPL 0 in the frame: guest kernel mode)
// and events masked. Unarmed: `ud2` (crash).
core::arch::global_asm!(
    ".pushsection .text.attacker_failsafe, \"ax\", @progbits",
    ".balign 16",
    ".globl attacker_failsafe",
    "attacker_failsafe:",
    "lock incq {count}(%rip)",
    "mov 48(%rsp), %rax",
    "mov %rax, {fs_rip}(%rip)",
    "mov 56(%rsp), %rax",
    "mov %rax, {fs_cs}(%rip)",
    "xor %r11d, %r11d",
    "xchg %r11, {resume}(%rip)",
    "test %r11, %r11",
    "jz 1f",
    "mov {rsp}(%rip), %rax",
    "mov %rax, %rsp",
    "pushq ${ss}",
    "push %rax",
    "pushq $2",
    "pushq ${cs}",
    "push %r11",
    "pushq $0",
    "jmp sdk_hypercall_page + {iret} * 32",
    "1: ud2",
    ".popsection",
    count = sym FAILSAFES,
    fs_rip = sym FAILSAFE_RIP,
    fs_cs = sym FAILSAFE_CS,
    resume = sym RESUME_RIP,
    rsp = sym RESUME_RSP,
    ss = const xen_abi::mm::FLAT_KERNEL_SS,
    cs = const xen_abi::mm::FLAT_KERNEL_CS & !3,
    iret = const xen_abi::hypercall::IRET,
    options(att_syntax),
);

// ---------------------------------------------------------------------------------------
// Hypercalls
// ---------------------------------------------------------------------------------------

/// Hypercall `nr` (< 128) through the hypercall page.
///
/// # Safety
/// Any pointer argument must be one the hypervisor must refuse or point at memory of
/// ours that the call may read or write.
pub unsafe fn hcall(nr: u64, a: [u64; 5]) -> Result<u64, Errno> {
    // SAFETY: forwarded to the caller.
    unsafe { hypercall::call(nr, a[0], a[1], a[2], a[3], a[4]) }
}

/// A `syscall` with any `rax` (the hypercall page only has stubs for 0..128).
///
/// # Safety
/// As for [`hcall`].
pub unsafe fn syscall_any(nr: u64, a: [u64; 5]) -> Result<u64, Errno> {
    let ret: i64;
    // SAFETY: from guest kernel mode `syscall` is a hypercall; the hypervisor returns to
    // the next instruction with rcx/r11 clobbered (declared) and may clobber the
    // argument registers (declared). Pointer arguments: the caller's contract.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            inlateout("rdi") a[0] => _,
            inlateout("rsi") a[1] => _,
            inlateout("rdx") a[2] => _,
            inlateout("r10") a[3] => _,
            inlateout("r8") a[4] => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    hypercall::decode(ret)
}

/// Address of the hypercall page's stub for `nr`.
pub fn stub(nr: u64) -> u64 {
    hypercall::hypercall_page() + nr * 32
}

// ---------------------------------------------------------------------------------------
// Pages and page tables
// ---------------------------------------------------------------------------------------

/// A zeroed page from the heap (in the start-of-day region, so its MFN is in the P2M),
/// never freed: attacks turn some into page tables or descriptor tables.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub va: u64,
    pub mfn: u64,
}

fn alloc_pages(n: usize) -> Option<u64> {
    let layout =
        core::alloc::Layout::from_size_align(n * PAGE_SIZE as usize, PAGE_SIZE as usize).ok()?;
    // SAFETY: `layout` has a non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    (!p.is_null()).then_some(p as u64)
}

impl Page {
    pub fn alloc() -> Result<Page, String> {
        let va = alloc_pages(1).ok_or("out of heap")?;
        let mfn = mm::virt_to_mfn(va).ok_or("heap page outside the P2M")?;
        Ok(Page { va, mfn })
    }

    /// Remap the page at its own address, writable or read-only.
    pub fn remap(&self, writable: bool) -> Result<(), Errno> {
        let flags = if writable {
            PAGE_KERNEL
        } else {
            PAGE_KERNEL_RO
        };
        // SAFETY: the page is ours and no Rust reference points into it.
        unsafe { hypercall::update_va_mapping(self.va, make_pte(self.mfn, flags), UVMF_INVLPG) }
    }

    /// Write entry `i` (while the page is writable).
    pub fn set(&self, i: usize, v: u64) {
        if i < 512 {
            // SAFETY: in-bounds u64 of our own mapped page; no reference into it exists.
            unsafe { (self.va as *mut u64).add(i).write_volatile(v) };
        }
    }

    /// Read entry `i`.
    pub fn get(&self, i: usize) -> u64 {
        if i < 512 {
            // SAFETY: in-bounds u64 of our own mapped page.
            unsafe { (self.va as *const u64).add(i).read_volatile() }
        } else {
            0
        }
    }

    /// The L1 entry mapping the page and its machine address.
    pub fn pte(&self) -> Result<(u64, u64), String> {
        mm::walk(self.va, 1).ok_or_else(|| format!("no L1 entry for {:#x}", self.va))
    }
}

/// A page followed by an unmapped one (a guard): arrays placed at the end of the page
/// run into the guard after their first entries. Returns the page; the guard is at
/// `va + 4096`.
pub fn guarded_page() -> Result<Page, String> {
    let va = alloc_pages(2).ok_or("out of heap")?;
    let mfn = mm::virt_to_mfn(va).ok_or("heap page outside the P2M")?;
    // SAFETY: the second page is ours, freshly allocated, and nothing refers into it.
    unsafe { hypercall::update_va_mapping(va + PAGE_SIZE, 0, UVMF_INVLPG) }
        .map_err(|e| format!("unmapping the guard page: -{}", e.0))?;
    Ok(Page { va, mfn })
}

/// Whether `mfn` is one of our pseudo-physical frames.
pub fn own(mfn: u64) -> bool {
    let Some(pfn) = peek(M2P + mfn * 8) else {
        return false;
    };
    pfn < guest_sdk::start_info().nr_pages && mm::pfn_to_mfn(pfn) == Some(mfn)
}

/// Our kernel L4 (the start-of-day one).
pub fn l4_mfn() -> Result<u64, String> {
    mm::virt_to_mfn(guest_sdk::start_info().pt_base).ok_or_else(|| "pt_base outside the P2M".into())
}

/// Entry `i` of the start-of-day page table with machine frame `mfn`.
pub fn table_entry(mfn: u64, i: usize) -> u64 {
    let va = mm::pfn_to_virt(mm::mfn_to_pfn(mfn));
    // SAFETY: start-of-day page tables are mapped (read-only) in the start-of-day region
    // at `pfn_to_virt(pfn)`; reading is allowed. `i & 511 < 512`.
    unsafe { (va as *const u64).add(i & 511).read_volatile() }
}

/// A frame of the hypervisor: the table behind the first present entry of our L4's
/// hypervisor slots (256..271) that is neither ours nor the L4 itself.
pub fn xen_frame() -> Result<u64, String> {
    let l4 = l4_mfn()?;
    (HYPERVISOR_L4_FIRST..=HYPERVISOR_L4_LAST)
        .map(|i| table_entry(l4, i))
        .filter(|e| e & PTE_PRESENT != 0)
        .map(pte_mfn)
        .find(|&m| m != l4 && !own(m))
        .ok_or_else(|| "no hypervisor frame in L4 slots 256..271".into())
}

/// Our domain id: the remote end Xen records for an unbound port we offer ourselves.
pub fn my_domid() -> Result<u16, String> {
    let p = guest_sdk::events::alloc_unbound(xen_abi::xen::DOMID_SELF)
        .map_err(|e| format!("alloc_unbound: -{}", e.0))?;
    let st = guest_sdk::events::status(p);
    let _ = guest_sdk::events::close(p);
    let st = st.map_err(|e| format!("status: -{}", e.0))?;
    Ok(st.u0 as u16)
}

// ---------------------------------------------------------------------------------------
// Time and the console
// ---------------------------------------------------------------------------------------

static TIMER_PORT: AtomicU32 = AtomicU32::new(0);

/// Sleep `ns` nanoseconds (polling `VIRQ_TIMER`, events stay masked).
pub fn sleep_ns(ns: u64) {
    use guest_sdk::{events, sched, time};
    let mut port = TIMER_PORT.load(SeqCst);
    if port == 0 {
        port = events::bind_virq(xen_abi::xen::VIRQ_TIMER, 0).unwrap_or(0);
        TIMER_PORT.store(port, SeqCst);
    }
    let deadline = time::system_time_ns() + ns;
    while time::system_time_ns() < deadline {
        let _ = hypercall::set_timer_op(deadline);
        if port == 0 {
            sched::yield_now();
            continue;
        }
        let _ = sched::poll(&[port], deadline);
        events::clear_pending(port);
    }
}

/// Wait (at most `max_ns`) until the console backend has read everything we wrote, so
/// nothing is lost if the domain dies next.
pub fn drain_console(max_ns: u64) {
    use xen_abi::console::XenconsInterface;
    let si = guest_sdk::start_info();
    if guest_sdk::conring::ring().is_none() {
        return;
    }
    let page = mm::pfn_to_virt(mm::mfn_to_pfn(si.console_mfn));
    let cons = (page + core::mem::offset_of!(XenconsInterface, out_cons) as u64) as *const u32;
    let prod = (page + core::mem::offset_of!(XenconsInterface, out_prod) as u64) as *const u32;
    let deadline = guest_sdk::time::system_time_ns() + max_ns;
    loop {
        // SAFETY: the console page is mapped at start of day; the indices are u32 fields
        // the backend updates concurrently (volatile reads, no references).
        let (c, p) = unsafe { (cons.read_volatile(), prod.read_volatile()) };
        if c == p || guest_sdk::time::system_time_ns() > deadline {
            break;
        }
        sleep_ns(10_000_000);
    }
}

// ---------------------------------------------------------------------------------------
// Verdicts
// ---------------------------------------------------------------------------------------

/// Xen's name for an errno.
pub fn errno_name(e: Errno) -> &'static str {
    match e {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        E2BIG => "E2BIG",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EINVAL => "EINVAL",
        ENOSPC => "ENOSPC",
        ENOSYS => "ENOSYS",
        EOPNOTSUPP => "EOPNOTSUPP",
        ERANGE => "ERANGE",
        ENXIO => "ENXIO",
        _ => "?",
    }
}

/// A hypercall result as text.
pub fn show(r: Result<u64, Errno>) -> String {
    match r {
        // Grant ops report small negative `GNTST_*` statuses.
        Ok(v) if (-20..0).contains(&(v as i64)) => format!("status {}", v as i64),
        Ok(v) => format!("accepted ({v:#x})"),
        Err(e) => format!("-{} {}", e.0, errno_name(e)),
    }
}

/// What Xen 4.17 answers, as text.
pub fn show_want(w: Result<u64, Errno>) -> String {
    match w {
        Ok(v) if (-20..0).contains(&(v as i64)) => format!("status {}", v as i64),
        Ok(v) => format!("returns {v:#x}"),
        Err(e) => format!("-{} {}", e.0, errno_name(e)),
    }
}

/// The answer of one call against Xen 4.17's: `None` if they agree, else the mismatch.
pub fn mismatch(what: &str, got: Result<u64, Errno>, want: Result<u64, Errno>) -> Option<String> {
    (got != want).then(|| format!("{what}: {} (Xen 4.17: {})", show(got), show_want(want)))
}

/// Several calls, each with Xen 4.17's answer: all must agree.
pub fn all_agree(cases: &[Case]) -> Outcome {
    // Mismatches grouped by (our answer, Xen's answer), in order of first appearance.
    let mut bad: Vec<(Answer, Answer, Vec<&str>)> = Vec::new();
    for (what, got, want) in cases.iter().filter(|(_, g, w)| g != w) {
        match bad.iter_mut().find(|(g, w, _)| g == got && w == want) {
            Some((_, _, whats)) => whats.push(what),
            None => bad.push((*got, *want, alloc::vec![what.as_str()])),
        }
    }
    if !bad.is_empty() {
        return Err(bad
            .iter()
            .map(|(got, want, whats)| {
                format!(
                    "{}: {} (Xen 4.17: {})",
                    whats.join(", "),
                    show(*got),
                    show_want(*want)
                )
            })
            .collect::<Vec<_>>()
            .join("; "));
    }
    // Xen's answers in order of first appearance, with how often each came.
    let mut wants: Vec<(Answer, usize)> = Vec::new();
    for (_, _, w) in cases {
        match wants.iter_mut().find(|(x, _)| x == w) {
            Some((_, n)) => *n += 1,
            None => wants.push((*w, 1)),
        }
    }
    Ok(match wants.as_slice() {
        [(Err(e), n)] => format!("errno -{} {} for {n} cases", e.0, errno_name(*e)),
        _ => format!(
            "as Xen 4.17 in {} cases: {}",
            cases.len(),
            wants
                .iter()
                .map(|(w, n)| format!("{} x{n}", show_want(*w)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}
