//! Domains and vCPUs: the mechanism's record of each guest.
//!
//! All domains live in one table behind `DOMAINS` (first in the lock order). A vCPU
//! runs on at most one CPU; its registers are in `Vcpu::regs` while it is not running
//! and in that CPU's `CpuInfo::guest_regs` while it is.

extern crate alloc;

use crate::arch::percpu::Regs;
use alloc::boxed::Box;
use alloc::vec::Vec;
use spin::Mutex;

pub type DomId = u16;

/// One entry of a guest's virtual IDT (`set_trap_table`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapInfo {
    pub address: u64,
    pub cs: u16,
    /// Bits 0..1: the lowest privilege allowed to raise it with `int`; bit 2: mask
    /// events on entry (Xen's `TI_GET_IF`).
    pub flags: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Runnable,
    Blocked,
    /// Not initialised or taken down (`VCPUOP_down`).
    Down,
}

/// 512-byte FXSAVE area.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state after `fninit`, with SSE exceptions masked (MXCSR 0x1f80).
    pub fn initial() -> FpuState {
        let mut s = [0u8; 512];
        s[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        s[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        FpuState(s)
    }
}

pub struct Vcpu {
    pub id: u32,
    pub regs: Regs,
    pub state: RunState,
    /// The CPU this vCPU is loaded on, if any.
    pub running_on: Option<usize>,
    /// Hard affinity: the CPUs it may run on (`xl vcpu-pin`).
    pub affinity: u64,
    /// Guest kernel mode (true) or guest user mode.
    pub kernel_mode: bool,
    /// Kernel and user base pointers and LDT, changed only by `hv_core::mm::Mmu`.
    pub mm: hv_core::mm::VcpuMm,
    /// `stack_switch`: the kernel stack used when an event arrives in user mode.
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    pub traps: [TrapInfo; 256],
    pub event_callback: u64,
    pub failsafe_callback: u64,
    pub syscall_callback: u64,
    pub nmi_callback: u64,
    pub syscall_masks_events: bool,
    pub failsafe_masks_events: bool,
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
    /// Virtual IOPL (0..3), from `PHYSDEVOP_set_iopl`.
    pub iopl: u32,
    /// `fpu_taskswitch(1)` sets this; the next FPU use raises #NM in the guest.
    pub fpu_ts: bool,
    pub fpu: FpuState,
    /// Frames of the guest's GDT (each holds a SegDesc type reference) and its size.
    pub gdt_frames: heapless::Vec<u64, 14>,
    pub gdt_ents: u32,
    /// Debug registers as the guest set them (`set_debugreg`, `mov %dbN`): validated,
    /// virtual only (not loaded into the hardware yet, so breakpoints do not fire).
    pub debugreg: [u64; 8],
    /// Set once a context was loaded (`setvcpucontext`, or dom0's build).
    pub initialised: bool,
    /// Time this vCPU has run (ns), and when its current run started.
    pub run_ns: u64,
    pub run_start: u64,
    /// Absolute system time (ns) of the single-shot timer, 0 = none.
    pub timer_deadline: u64,
    /// Event-channel port bound to each VIRQ on this vCPU (0 = none).
    pub virq_port: [u32; 24],
    /// What `SCHEDOP_poll` waits for (Xen's `poll_evtchn` and `poll_mask` bit).
    pub poll: hv_core::sched::PollWait,
    pub poll_deadline: u64,
}

impl Vcpu {
    /// Time it has run (ns) up to `now`, the current run included.
    pub fn cpu_time(&self, now: u64) -> u64 {
        match self.running_on {
            Some(_) => self
                .run_ns
                .saturating_add(now.saturating_sub(self.run_start)),
            None => self.run_ns,
        }
    }

    /// Machine frame of the kernel L4 (0 before the first base pointer).
    pub fn kernel_l4(&self) -> u64 {
        self.mm.kernel_l4().unwrap_or(0)
    }

    /// Machine frame of the user L4 (0 = none).
    pub fn user_l4(&self) -> u64 {
        self.mm.user_l4().unwrap_or(0)
    }

    pub fn new(id: u32) -> Box<Vcpu> {
        Box::new(Vcpu {
            id,
            regs: Regs::default(),
            state: RunState::Down,
            running_on: None,
            affinity: u64::MAX,
            kernel_mode: true,
            mm: hv_core::mm::VcpuMm::new(),
            kernel_ss: 0,
            kernel_sp: 0,
            traps: [TrapInfo::default(); 256],
            event_callback: 0,
            failsafe_callback: 0,
            syscall_callback: 0,
            nmi_callback: 0,
            syscall_masks_events: false,
            failsafe_masks_events: false,
            fs_base: 0,
            gs_base_kernel: 0,
            gs_base_user: 0,
            iopl: 0,
            fpu_ts: false,
            fpu: FpuState::initial(),
            debugreg: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            initialised: false,
            run_ns: 0,
            run_start: 0,
            gdt_frames: heapless::Vec::new(),
            gdt_ents: 0,
            timer_deadline: 0,
            virq_port: [0; 24],
            poll: hv_core::sched::PollWait::Off,
            poll_deadline: 0,
        })
    }
}

/// Why a domain stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `SCHEDOP_shutdown` with this reason (`SHUTDOWN_*`).
    Guest(u32),
    /// The hypervisor crashed it (an ABI violation, an undeliverable fault).
    Crashed,
}

pub struct Domain {
    pub id: DomId,
    pub privileged: bool,
    pub vcpus: Vec<Box<Vcpu>>,
    pub shared_info_mfn: u64,
    pub max_pages: u64,
    pub tot_pages: u64,
    pub vm_assist: u64,
    pub shutdown: Option<Shutdown>,
    /// Paused by the toolstack (`xl pause`): its vCPUs do not run. `pause_count` is
    /// Xen's pause count (a new domain starts at 1); `paused` is `pause_count > 0`.
    pub paused: bool,
    pub pause_count: u32,
    /// Being destroyed.
    pub dying: bool,
    /// `createdomain`'s `max_vcpus`, which `XEN_DOMCTL_max_vcpus` must repeat.
    pub max_vcpus: u32,
    /// The toolstack's handle (UUID), and settimeoffset's offset.
    pub handle: [u8; 16],
    pub time_offset: i64,
    /// Credit scheduler parameters (`xl sched-credit`).
    pub weight: u16,
    pub cap: u16,
    pub evtchn: hv_core::evtchn::Table,
    /// Physical IRQs mapped into it (the control domain only: `PHYSDEVOP_map_pirq`).
    pub pirqs: hv_core::pirq::Table,
    pub cmdline: heapless::String<1024>,
}

pub struct DomainTable {
    pub doms: Vec<Box<Domain>>,
}

impl DomainTable {
    pub fn get(&mut self, id: DomId) -> Option<&mut Domain> {
        self.doms.iter_mut().find(|d| d.id == id).map(|d| &mut **d)
    }

    pub fn contains(&self, id: DomId) -> bool {
        self.doms.iter().any(|d| d.id == id)
    }

    /// Two different domains at once (for operations between them).
    pub fn get2(&mut self, a: DomId, b: DomId) -> Option<(&mut Domain, &mut Domain)> {
        if a == b {
            return None;
        }
        let ia = self.doms.iter().position(|d| d.id == a)?;
        let ib = self.doms.iter().position(|d| d.id == b)?;
        if ia < ib {
            let (l, r) = self.doms.split_at_mut(ib);
            Some((&mut *l[ia], &mut *r[0]))
        } else {
            let (l, r) = self.doms.split_at_mut(ia);
            Some((&mut *r[0], &mut *l[ib]))
        }
    }
}

/// Every domain. Lock order: first (before `sched`'s `POLICY`, `mm`, `heap`, `console`).
///
/// Take it with [`lock`] outside interrupt handlers (it waits with interrupts enabled,
/// so a waiting CPU still answers TLB-flush IPIs) and only with `try_lock` inside them.
pub static DOMAINS: Mutex<DomainTable> = Mutex::new(DomainTable { doms: Vec::new() });

/// Take `DOMAINS` from a non-interrupt context (interrupts off on entry and on return).
pub fn lock() -> spin::MutexGuard<'static, DomainTable> {
    loop {
        if let Some(g) = DOMAINS.try_lock() {
            return g;
        }
        // Spin with interrupts enabled for as long as the lock is held, so a flush IPI
        // is answered whenever it comes (a one-instruction `sti` window is not enough:
        // emulators check interrupts only between blocks of instructions).
        // SAFETY: no lock is held here (lock order: DOMAINS is first), so interrupt
        // handlers may run; they never wait for DOMAINS (try_lock only).
        unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
        while DOMAINS.is_locked() {
            core::hint::spin_loop();
        }
        // SAFETY: back to the hypervisor's interrupts-off rule before taking the lock.
        unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    }
}

/// Which (domain, vCPU) a CPU runs, packed in `CpuInfo::current`.
pub fn pack_current(dom: DomId, vcpu: u32) -> u64 {
    (u64::from(dom) << 32) | u64::from(vcpu)
}

pub fn unpack_current(v: u64) -> Option<(DomId, u32)> {
    if v == u64::MAX {
        None
    } else {
        Some(((v >> 32) as DomId, v as u32))
    }
}
