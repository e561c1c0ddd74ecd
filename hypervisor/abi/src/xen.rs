//! Core shared structures (`xen/xen.h`, `xen/arch-x86/xen.h`, `xen/arch-x86/xen-x86_64.h`):
//! `start_info`, `shared_info`, `vcpu_info`, time, trap table, register frames, the vCPU
//! context, multicalls, domain ids and `vm_assist` types.
//!
//! Shared-memory structs (`SharedInfo`, `VcpuInfo`, `VcpuTimeInfo`) are written by the
//! hypervisor while the guest runs: guests read them with volatile accesses, never through
//! a Rust reference held across a read.

/// A domain id (`domid_t`).
pub type DomId = u16;

/// `DOMID_FIRST_RESERVED`: ids at or above this are not ordinary domains.
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// `DOMID_SELF`: the calling domain.
pub const DOMID_SELF: DomId = 0x7FF0;
/// `DOMID_IO`: I/O memory pseudo-owner (mmu_update foreign domain).
pub const DOMID_IO: DomId = 0x7FF1;
/// `DOMID_XEN`: owner of hypervisor pages that privileged domains may map.
pub const DOMID_XEN: DomId = 0x7FF2;
/// `DOMID_COW`: owner of shared (copy-on-write) pages.
pub const DOMID_COW: DomId = 0x7FF3;
/// `DOMID_INVALID`: pages with unknown owner.
pub const DOMID_INVALID: DomId = 0x7FF4;
/// `DOMID_IDLE`: the idle domain.
pub const DOMID_IDLE: DomId = 0x7FFF;
/// `DOMID_MASK`.
pub const DOMID_MASK: DomId = 0x7FFF;

/// `XEN_LEGACY_MAX_VCPUS`: vCPUs whose `vcpu_info` lives in `shared_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;
/// Older name of [`XEN_LEGACY_MAX_VCPUS`].
pub const MAX_VIRT_CPUS: usize = XEN_LEGACY_MAX_VCPUS;
/// `MAX_GUEST_CMDLINE`: size of `start_info.cmd_line`.
pub const MAX_GUEST_CMDLINE: usize = 1024;
/// Bits in a `xen_ulong_t` (the width of one event-channel selector word).
pub const XEN_ULONG_BITS: usize = 64;
/// Number of 2-level event channels on x86_64 (`EVTCHN_2L_NR_CHANNELS`).
pub const EVTCHN_2L_NR_CHANNELS: usize = XEN_ULONG_BITS * XEN_ULONG_BITS;

// ---------------------------------------------------------------------------------------
// start_info
// ---------------------------------------------------------------------------------------

/// The `start_info.magic` prefix of a 64-bit PV guest (NUL-padded to 32 bytes).
pub const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_64";

/// `SIF_PRIVILEGED`: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: this is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `SIF_MULTIBOOT_MOD`: `mod_start` is a multiboot module list.
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `SIF_MOD_START_PFN`: `mod_start` is a PFN, not a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS`: tools understand a virtually mapped P2M.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `SIF_PM_MASK`: one byte reserved for xen-pm options.
pub const SIF_PM_MASK: u32 = 0xFF << 8;

/// `struct start_info`: what the domain builder hands a PV guest (pointer in `rsi`).
///
/// OUT (hypervisor to guest), on a page of its own, mapped in the guest's initial
/// address space. The C `console` union is flattened: for a domU `console_mfn` and
/// `console_evtchn` hold `console.domU.{mfn,evtchn}`; for dom0 the same 8 bytes at
/// `console_mfn` hold `console.dom0.{info_off,info_size}` (see [`StartInfo::dom0_console_info`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// "xen-<version>-<platform>", `xen-3.0-x86_64` then NULs.
    pub magic: [u8; 32],
    /// Total pages allocated to this domain.
    pub nr_pages: u64,
    /// MACHINE address of the shared info page.
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    pub _pad0: u32,
    /// MACHINE frame of the XenStore ring page.
    pub store_mfn: u64,
    /// Event channel for XenStore.
    pub store_evtchn: u32,
    pub _pad1: u32,
    /// domU: MACHINE frame of the console ring. dom0: `info_off | info_size << 32`.
    pub console_mfn: u64,
    /// domU: event channel of the console ring.
    pub console_evtchn: u32,
    pub _pad2: u32,
    /// VIRTUAL address of the top-level page table (L4).
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// VIRTUAL address of the page-frame list (P2M, `nr_pages` entries of u64).
    pub mfn_list: u64,
    /// VIRTUAL address (or PFN with `SIF_MOD_START_PFN`) of the pre-loaded module.
    pub mod_start: u64,
    /// Size in bytes of the pre-loaded module.
    pub mod_len: u64,
    /// NUL-terminated command line.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// First PFN of the initial P2M table (when placed by `XEN_ELFNOTE_INIT_P2M`).
    pub first_p2m_pfn: u64,
    /// Number of PFNs of the initial P2M table.
    pub nr_p2m_frames: u64,
}
const _: () = assert!(core::mem::size_of::<StartInfo>() == 1168);
const _: () = assert!(core::mem::offset_of!(StartInfo, console_mfn) == 0x48);
const _: () = assert!(core::mem::offset_of!(StartInfo, pt_base) == 0x58);
const _: () = assert!(core::mem::offset_of!(StartInfo, cmd_line) == 0x80);

impl StartInfo {
    /// An all-zero `start_info`, for builders to fill in.
    pub const ZERO: StartInfo = StartInfo {
        magic: [0; 32],
        nr_pages: 0,
        shared_info: 0,
        flags: 0,
        _pad0: 0,
        store_mfn: 0,
        store_evtchn: 0,
        _pad1: 0,
        console_mfn: 0,
        console_evtchn: 0,
        _pad2: 0,
        pt_base: 0,
        nr_pt_frames: 0,
        mfn_list: 0,
        mod_start: 0,
        mod_len: 0,
        cmd_line: [0; MAX_GUEST_CMDLINE],
        first_p2m_pfn: 0,
        nr_p2m_frames: 0,
    };

    /// dom0 view of the console union: (`info_off`, `info_size`) of the
    /// `dom0_vga_console_info` inside the start-info page (0, 0 when absent).
    pub const fn dom0_console_info(&self) -> (u32, u32) {
        (self.console_mfn as u32, (self.console_mfn >> 32) as u32)
    }

    /// Whether `magic` starts with [`START_INFO_MAGIC`].
    pub fn magic_ok(&self) -> bool {
        self.magic.starts_with(START_INFO_MAGIC)
    }

    /// The command line up to its first NUL.
    pub fn cmd_line_bytes(&self) -> &[u8] {
        let len = self
            .cmd_line
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_GUEST_CMDLINE);
        &self.cmd_line[..len]
    }
}

/// `struct xen_multiboot_mod_list`: one entry when `SIF_MULTIBOOT_MOD` is set.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMultibootModList {
    /// Physical address of the module's first byte.
    pub mod_start: u32,
    /// Physical address of the module's last byte (inclusive).
    pub mod_end: u32,
    /// Physical address of the NUL-terminated command line.
    pub cmdline: u32,
    /// Must be zero.
    pub pad: u32,
}
const _: () = assert!(core::mem::size_of::<XenMultibootModList>() == 16);

// ---------------------------------------------------------------------------------------
// Time, vcpu_info, shared_info
// ---------------------------------------------------------------------------------------

/// `vcpu_time_info.flags`: all vCPUs' system time is monotonic together.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `vcpu_time_info.flags`: the guest may read it from a vDSO.
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `struct vcpu_time_info`: per-vCPU system-time parameters. OUT (hypervisor writes).
///
/// The hypervisor increments `version` before and after each update (odd = update in
/// progress); read with the seqlock protocol. Current system time in ns is
/// `system_time + ((((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32)`
/// (a negative `tsc_shift` shifts right).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Update counter; odd while an update is in progress.
    pub version: u32,
    pub pad0: u32,
    /// TSC at the last update.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-ns multiplier (32.32 fixed point after shifting).
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta before multiplying (may be negative).
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    pub pad1: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<VcpuTimeInfo>() == 32);

/// `struct arch_vcpu_info` (x86_64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {
    /// OUT: faulting address of the last `#PF` bounced to the guest.
    pub cr2: u64,
    pub pad: u64,
}
const _: () = assert!(core::mem::size_of::<ArchVcpuInfo>() == 16);

/// `struct vcpu_info`: per-vCPU event state and time, 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// OUT (set by hypervisor, cleared by guest): an event upcall is pending.
    pub evtchn_upcall_pending: u8,
    /// IN (guest): non-zero masks event upcalls (the PV "interrupt flag", inverted).
    pub evtchn_upcall_mask: u8,
    pub pad0: [u8; 6],
    /// OUT/IN: which words of `shared_info.evtchn_pending` may have bits set.
    pub evtchn_pending_sel: u64,
    /// Arch state (`cr2`).
    pub arch: ArchVcpuInfo,
    /// System time parameters.
    pub time: VcpuTimeInfo,
}
const _: () = assert!(core::mem::size_of::<VcpuInfo>() == 64);

/// `struct arch_shared_info` (x86_64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchSharedInfo {
    /// IN (guest): number of valid entries in the P2M.
    pub max_pfn: u64,
    /// IN (guest): frame of the list of frames of the list of P2M frames (0 = none).
    pub pfn_to_mfn_frame_list_list: u64,
    /// OUT: NMI reason bits.
    pub nmi_reason: u64,
    /// IN (guest): cr3 of the address space where `p2m_vaddr` is valid (0 = none).
    pub p2m_cr3: u64,
    /// IN (guest): virtual address of the linear P2M list.
    pub p2m_vaddr: u64,
    /// IN (guest): generation count of the P2M mapping (odd while updating).
    pub p2m_generation: u64,
}
const _: () = assert!(core::mem::size_of::<ArchSharedInfo>() == 48);

/// `struct shared_info`: the page shared by the hypervisor and a domain.
///
/// Its machine address is `start_info.shared_info`; a PV guest maps it itself (e.g. with
/// `update_va_mapping`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfo {
    /// Per-vCPU event and time state for vCPUs `0..XEN_LEGACY_MAX_VCPUS`.
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// OUT (set by hypervisor, cleared by guest): pending bits, one per event channel.
    pub evtchn_pending: [u64; XEN_ULONG_BITS],
    /// IN (guest): mask bits, one per event channel.
    pub evtchn_mask: [u64; XEN_ULONG_BITS],
    /// OUT: wallclock version counter (same protocol as `VcpuTimeInfo::version`).
    pub wc_version: u32,
    /// OUT: wallclock seconds at system time 0 (low 32 bits).
    pub wc_sec: u32,
    /// OUT: wallclock nanoseconds at system time 0.
    pub wc_nsec: u32,
    /// OUT: wallclock seconds, high 32 bits.
    pub wc_sec_hi: u32,
    /// Arch fields (P2M description).
    pub arch: ArchSharedInfo,
}
const _: () = assert!(core::mem::size_of::<SharedInfo>() == 3136);
const _: () = assert!(core::mem::offset_of!(SharedInfo, evtchn_pending) == 2048);
const _: () = assert!(core::mem::offset_of!(SharedInfo, wc_version) == 3072);

impl SharedInfo {
    /// An all-zero `shared_info`.
    pub const ZERO: SharedInfo = SharedInfo {
        vcpu_info: [VcpuInfo {
            evtchn_upcall_pending: 0,
            evtchn_upcall_mask: 0,
            pad0: [0; 6],
            evtchn_pending_sel: 0,
            arch: ArchVcpuInfo { cr2: 0, pad: 0 },
            time: VcpuTimeInfo {
                version: 0,
                pad0: 0,
                tsc_timestamp: 0,
                system_time: 0,
                tsc_to_system_mul: 0,
                tsc_shift: 0,
                flags: 0,
                pad1: [0; 2],
            },
        }; XEN_LEGACY_MAX_VCPUS],
        evtchn_pending: [0; XEN_ULONG_BITS],
        evtchn_mask: [0; XEN_ULONG_BITS],
        wc_version: 0,
        wc_sec: 0,
        wc_nsec: 0,
        wc_sec_hi: 0,
        arch: ArchSharedInfo {
            max_pfn: 0,
            pfn_to_mfn_frame_list_list: 0,
            nmi_reason: 0,
            p2m_cr3: 0,
            p2m_vaddr: 0,
            p2m_generation: 0,
        },
    };
}

/// Byte offsets inside the shared-info page, for volatile access without references.
pub mod shared_info_offsets {
    use super::{SharedInfo, VcpuInfo, VcpuTimeInfo};
    use core::mem::{offset_of, size_of};

    /// Offset of `vcpu_info[v]`.
    pub const fn vcpu_info(v: usize) -> usize {
        offset_of!(SharedInfo, vcpu_info) + v * size_of::<VcpuInfo>()
    }
    /// Offset of `vcpu_info[0].time` relative to a `vcpu_info`.
    pub const VCPU_TIME: usize = offset_of!(VcpuInfo, time);
    /// Offset of `version` in `vcpu_time_info`.
    pub const TIME_VERSION: usize = offset_of!(VcpuTimeInfo, version);
    /// Offset of `evtchn_pending`.
    pub const EVTCHN_PENDING: usize = offset_of!(SharedInfo, evtchn_pending);
    /// Offset of `evtchn_mask`.
    pub const EVTCHN_MASK: usize = offset_of!(SharedInfo, evtchn_mask);
    /// Offset of `wc_version`.
    pub const WC_VERSION: usize = offset_of!(SharedInfo, wc_version);
}

// ---------------------------------------------------------------------------------------
// Traps, registers, vCPU context
// ---------------------------------------------------------------------------------------

/// `struct trap_info`: one entry of the virtual IDT (`set_trap_table`, IN).
///
/// A table passed to `set_trap_table` ends with an entry whose `address` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// Exception vector.
    pub vector: u8,
    /// Bits 0..1: privilege level allowed to raise it with `int n` (DPL);
    /// bit 2 (`TI_IF`): mask events on entry, like an interrupt gate clearing IF
    /// (xen.h: "clear event enable?"). The `iret` hypercall restores the mask from the
    /// frame's `rflags.IF`.
    pub flags: u8,
    /// Code selector (`FLAT_KERNEL_CS`).
    pub cs: u16,
    pub _pad: u32,
    /// Handler address.
    pub address: u64,
}
const _: () = assert!(core::mem::size_of::<TrapInfo>() == 16);

impl TrapInfo {
    /// The terminating (empty) entry.
    pub const ZERO: TrapInfo = TrapInfo {
        vector: 0,
        flags: 0,
        cs: 0,
        _pad: 0,
        address: 0,
    };
}

/// `TrapInfo.flags` DPL mask (`TI_GET_DPL`).
pub const TI_DPL_MASK: u8 = 3;
/// `TrapInfo.flags` bit (`TI_SET_IF`): set `evtchn_upcall_mask` when delivering the trap.
pub const TI_IF: u8 = 4;

/// `VGCF_in_syscall` (x86_64): the `iret` hypercall returns as from a `syscall`.
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;
/// `VGCF_i387_valid`.
pub const VGCF_I387_VALID: u64 = 1 << 0;
/// `VGCF_in_kernel`.
pub const VGCF_IN_KERNEL: u64 = 1 << 2;
/// `VGCF_failsafe_disables_events`.
pub const VGCF_FAILSAFE_DISABLES_EVENTS: u64 = 1 << 3;
/// `VGCF_syscall_disables_events`.
pub const VGCF_SYSCALL_DISABLES_EVENTS: u64 = 1 << 4;
/// `VGCF_online`.
pub const VGCF_ONLINE: u64 = 1 << 5;

/// `struct iret_context`: the frame the `iret` hypercall pops (IN, on the guest stack).
///
/// The guest pushes it (lowest address first as listed) and jumps to the `iret` stub;
/// `rsp` at the `syscall` points at `rax`. Also the layout, above `rcx`/`r11`, of the
/// bounce frame the hypervisor builds for exceptions and events (see `BounceFrame`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IretContext {
    pub rax: u64,
    pub r11: u64,
    pub rcx: u64,
    /// `VGCF_IN_SYSCALL` or 0.
    pub flags: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(core::mem::size_of::<IretContext>() == 72);

/// `struct cpu_user_regs` (x86_64): a full register frame (vCPU context, domctl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuUserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// Private to the hypervisor.
    pub error_code: u32,
    /// Private to the hypervisor.
    pub entry_vector: u32,
    pub rip: u64,
    pub cs: u16,
    pub _pad0: [u16; 1],
    /// Events mask saved at exception entry (`rflags.IF == !saved_upcall_mask`).
    pub saved_upcall_mask: u8,
    pub _pad1: [u8; 3],
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u16,
    pub _pad2: [u16; 3],
    pub es: u16,
    pub _pad3: [u16; 3],
    pub ds: u16,
    pub _pad4: [u16; 3],
    pub fs: u16,
    pub _pad5: [u16; 3],
    pub gs: u16,
    pub _pad6: [u16; 3],
}

impl CpuUserRegs {
    /// All registers zero.
    pub const ZERO: CpuUserRegs = CpuUserRegs {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        rbp: 0,
        rbx: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rax: 0,
        rcx: 0,
        rdx: 0,
        rsi: 0,
        rdi: 0,
        error_code: 0,
        entry_vector: 0,
        rip: 0,
        cs: 0,
        _pad0: [0; 1],
        saved_upcall_mask: 0,
        _pad1: [0; 3],
        rflags: 0,
        rsp: 0,
        ss: 0,
        _pad2: [0; 3],
        es: 0,
        _pad3: [0; 3],
        ds: 0,
        _pad4: [0; 3],
        fs: 0,
        _pad5: [0; 3],
        gs: 0,
        _pad6: [0; 3],
    };
}
const _: () = assert!(core::mem::size_of::<CpuUserRegs>() == 200);

/// `struct vcpu_guest_context` (x86_64): a vCPU's full state, for `VCPUOP_initialise`
/// and `XEN_DOMCTL_{get,set}vcpucontext`. IN or OUT depending on the operation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuGuestContext {
    /// FXSAVE image of user-level FPU registers.
    pub fpu_ctxt: [u8; 512],
    /// `VGCF_*` flags.
    pub flags: u64,
    /// General-purpose registers.
    pub user_regs: CpuUserRegs,
    /// Virtual IDT.
    pub trap_ctxt: [TrapInfo; 256],
    /// LDT linear address.
    pub ldt_base: u64,
    /// LDT entries.
    pub ldt_ents: u64,
    /// GDT machine frames.
    pub gdt_frames: [u64; 16],
    /// GDT entries.
    pub gdt_ents: u64,
    /// Kernel stack segment (virtual TSS SS1... SS for ring 3 kernels).
    pub kernel_ss: u64,
    /// Kernel stack pointer (virtual TSS).
    pub kernel_sp: u64,
    /// CR0..CR7; `ctrlreg[3]` holds the kernel L4 (`xen_pfn_to_cr3`), `ctrlreg[1]` the
    /// user L4 on x86_64.
    pub ctrlreg: [u64; 8],
    /// DR0..DR7.
    pub debugreg: [u64; 8],
    pub event_callback_eip: u64,
    pub failsafe_callback_eip: u64,
    pub syscall_callback_eip: u64,
    /// `VMASST_TYPE_*` bitmap.
    pub vm_assist: u64,
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
}
const _: () = assert!(core::mem::size_of::<VcpuGuestContext>() == 5168);

impl VcpuGuestContext {
    /// All zero (no FPU state, no registers, no traps): what builders start from.
    pub const ZERO: VcpuGuestContext = VcpuGuestContext {
        fpu_ctxt: [0; 512],
        flags: 0,
        user_regs: CpuUserRegs::ZERO,
        trap_ctxt: [TrapInfo::ZERO; 256],
        ldt_base: 0,
        ldt_ents: 0,
        gdt_frames: [0; 16],
        gdt_ents: 0,
        kernel_ss: 0,
        kernel_sp: 0,
        ctrlreg: [0; 8],
        debugreg: [0; 8],
        event_callback_eip: 0,
        failsafe_callback_eip: 0,
        syscall_callback_eip: 0,
        vm_assist: 0,
        fs_base: 0,
        gs_base_kernel: 0,
        gs_base_user: 0,
    };
}

/// `xen_pfn_to_cr3`.
pub const fn xen_pfn_to_cr3(pfn: u64) -> u64 {
    pfn << 12
}
/// `xen_cr3_to_pfn`.
pub const fn xen_cr3_to_pfn(cr3: u64) -> u64 {
    cr3 >> 12
}

// ---------------------------------------------------------------------------------------
// Multicall, vm_assist, VIRQs, console_io, misc
// ---------------------------------------------------------------------------------------

/// `struct multicall_entry`: one call of the `multicall` hypercall.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    /// IN: hypercall number.
    pub op: u64,
    /// OUT: its return value.
    pub result: u64,
    /// IN: arguments.
    pub args: [u64; 6],
}
const _: () = assert!(core::mem::size_of::<MulticallEntry>() == 64);

/// `vm_assist` commands.
pub const VMASST_CMD_ENABLE: u32 = 0;
pub const VMASST_CMD_DISABLE: u32 = 1;
/// `vm_assist` types.
pub const VMASST_TYPE_4GB_SEGMENTS: u32 = 0;
pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u32 = 1;
pub const VMASST_TYPE_WRITABLE_PAGETABLES: u32 = 2;
pub const VMASST_TYPE_PAE_EXTENDED_CR3: u32 = 3;
pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u32 = 4;
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;
pub const VMASST_TYPE_M2P_STRICT: u32 = 32;

/// Virtual interrupts (bind with `EVTCHNOP_bind_virq`). V = per vCPU, G = global.
pub const VIRQ_TIMER: u32 = 0;
pub const VIRQ_DEBUG: u32 = 1;
pub const VIRQ_CONSOLE: u32 = 2;
pub const VIRQ_DOM_EXC: u32 = 3;
pub const VIRQ_TBUF: u32 = 4;
pub const VIRQ_DEBUGGER: u32 = 6;
pub const VIRQ_XENOPROF: u32 = 7;
pub const VIRQ_CON_RING: u32 = 8;
pub const VIRQ_PCPU_STATE: u32 = 9;
pub const VIRQ_MEM_EVENT: u32 = 10;
pub const VIRQ_ARGO: u32 = 11;
pub const VIRQ_ENOMEM: u32 = 12;
pub const VIRQ_XENPMU: u32 = 13;
pub const VIRQ_ARCH_0: u32 = 16;
pub const NR_VIRQS: u32 = 24;

/// `xen_domain_handle_t`: a domain's UUID.
pub type XenDomainHandle = [u8; 16];

/// The forced-emulation prefix (`ud2; .ascii "xen"`) before `cpuid` in a PV guest.
pub const XEN_EMULATE_PREFIX: [u8; 5] = [0x0f, 0x0b, 0x78, 0x65, 0x6e];
