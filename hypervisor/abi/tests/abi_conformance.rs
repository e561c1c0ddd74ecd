//! ABI conformance: every `xen-abi` struct and constant against Xen's own C headers.
//!
//! The test writes a C program that includes the `libxen-dev` headers and prints
//! `sizeof`/`offsetof` (and field sizes) of each struct in [`structs`], and the value of
//! each constant in [`constants`]; it compiles it with `cc`, runs it and compares every
//! line with Rust's `size_of`/`offset_of!`. The headers are the oracle.
//!
//! Adding a struct is one line in `structs()`: `s!(RustType => "struct c_name" { a, b,
//! c_named_differently => "c.path" })`. Adding a constant is one line in `constants()`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use xen_abi::*;

/// One field to check: Rust name, C member designator, Rust offset and size.
struct Field {
    rust: &'static str,
    c: &'static str,
    offset: usize,
    size: usize,
}

/// One struct to check.
struct Struct {
    rust: &'static str,
    c: &'static str,
    size: usize,
    fields: Vec<Field>,
}

/// Size of the field a projection closure points at.
fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

macro_rules! cname {
    ($f:ident) => {
        stringify!($f)
    };
    ($f:ident $c:literal) => {
        $c
    };
}

/// `s!(Rust => "struct c" { field, field => "c.member", ... })`.
macro_rules! s {
    ($rt:ty => $ct:literal { $($f:ident $(=> $cf:literal)?),* $(,)? }) => {
        Struct {
            rust: stringify!($rt),
            c: $ct,
            size: size_of::<$rt>(),
            fields: vec![$(Field {
                rust: stringify!($f),
                c: cname!($f $($cf)?),
                offset: offset_of!($rt, $f),
                size: field_size::<$rt, _>(|x: &$rt| &x.$f),
            }),*],
        }
    };
}

/// Every struct `xen-abi` defines that has a counterpart in the headers.
fn structs() -> Vec<Struct> {
    use callback::*;
    use console::*;
    use domctl::*;
    use event_channel::*;
    use grant_table::*;
    use memory::*;
    use mm::*;
    use physdev::*;
    use sched::*;
    use sysctl::*;
    use vcpu::*;
    use version::*;
    use xen::*;
    vec![
        // xen.h / arch-x86
        s!(StartInfo => "struct start_info" { magic, nr_pages, shared_info, flags, store_mfn,
            store_evtchn, console_mfn => "console.domU.mfn",
            console_evtchn => "console.domU.evtchn", pt_base, nr_pt_frames, mfn_list,
            mod_start, mod_len, cmd_line, first_p2m_pfn, nr_p2m_frames }),
        s!(XenMultibootModList => "struct xen_multiboot_mod_list" { mod_start, mod_end, cmdline, pad }),
        s!(VcpuTimeInfo => "struct vcpu_time_info" { version, pad0, tsc_timestamp, system_time,
            tsc_to_system_mul, tsc_shift, flags, pad1 }),
        s!(ArchVcpuInfo => "struct arch_vcpu_info" { cr2, pad }),
        s!(VcpuInfo => "struct vcpu_info" { evtchn_upcall_pending, evtchn_upcall_mask,
            evtchn_pending_sel, arch, time }),
        s!(ArchSharedInfo => "struct arch_shared_info" { max_pfn, pfn_to_mfn_frame_list_list,
            nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation }),
        s!(SharedInfo => "struct shared_info" { vcpu_info, evtchn_pending, evtchn_mask,
            wc_version, wc_sec, wc_nsec, wc_sec_hi, arch }),
        s!(TrapInfo => "struct trap_info" { vector, flags, cs, address }),
        s!(IretContext => "struct iret_context" { rax, r11, rcx, flags, rip, cs, rflags, rsp, ss }),
        s!(CpuUserRegs => "struct cpu_user_regs" { r15, r14, r13, r12, rbp, rbx, r11, r10, r9,
            r8, rax, rcx, rdx, rsi, rdi, error_code, entry_vector, rip, cs, saved_upcall_mask,
            rflags, rsp, ss, es, ds, fs, gs }),
        s!(VcpuGuestContext => "struct vcpu_guest_context" { fpu_ctxt, flags, user_regs,
            trap_ctxt, ldt_base, ldt_ents, gdt_frames, gdt_ents, kernel_ss, kernel_sp, ctrlreg,
            debugreg, event_callback_eip, failsafe_callback_eip, syscall_callback_eip,
            vm_assist, fs_base, gs_base_kernel, gs_base_user }),
        s!(MulticallEntry => "struct multicall_entry" { op, result, args }),
        s!(MmuUpdate => "struct mmu_update" { ptr, val }),
        s!(MmuextOp => "struct mmuext_op" { cmd, arg1 => "arg1.mfn", arg2 => "arg2.src_mfn" }),
        // callback.h
        s!(CallbackRegister => "struct callback_register" { type_ => "type", flags, address }),
        s!(CallbackUnregister => "struct callback_unregister" { type_ => "type", _unused }),
        // sched.h
        s!(SchedShutdown => "struct sched_shutdown" { reason }),
        s!(SchedPoll => "struct sched_poll" { ports => "ports.p", nr_ports, timeout }),
        s!(SchedRemoteShutdown => "struct sched_remote_shutdown" { domain_id, reason }),
        s!(SchedWatchdog => "struct sched_watchdog" { id, timeout }),
        // io/console.h
        s!(XenconsInterface => "struct xencons_interface" { in_ => "in", out, in_cons, in_prod,
            out_cons, out_prod }),
        // io/xs_wire.h
        s!(xs_wire::XsdSockmsg => "struct xsd_sockmsg" { type_ => "type", req_id, tx_id, len }),
        s!(xs_wire::XenstoreDomainInterface => "struct xenstore_domain_interface" { req, rsp,
            req_cons, req_prod, rsp_cons, rsp_prod, server_features, connection, error }),
        // io/blkif.h, io/ring.h
        s!(io::blkif::BlkifRequestSegment => "struct blkif_request_segment" { gref, first_sect,
            last_sect }),
        s!(io::blkif::BlkifRequest => "struct blkif_request" { operation, nr_segments, handle,
            id, sector_number, seg }),
        s!(io::blkif::BlkifRequestDiscard => "struct blkif_request_discard" { operation, flag,
            handle, id, sector_number, nr_sectors }),
        s!(io::blkif::BlkifRequestIndirect => "struct blkif_request_indirect" { operation,
            indirect_op, nr_segments, id, sector_number, handle, indirect_grefs }),
        s!(io::blkif::BlkifResponse => "struct blkif_response" { id, operation, status }),
        s!(io::blkif::BlkifSringEntry => "union blkif_sring_entry" {}),
        s!(io::blkif::BlkifSring => "struct blkif_sring" { req_prod, req_event, rsp_prod,
            rsp_event, pvt => "pvt.pvt_pad", pad => "__pad", ring }),
        // io/netif.h
        s!(io::netif::NetifTxRequest => "struct netif_tx_request" { gref, offset, flags, id, size }),
        s!(io::netif::NetifExtraInfo => "struct netif_extra_info" { type_ => "type", flags, u }),
        s!(io::netif::NetifExtraGso => "__typeof__(((struct netif_extra_info *)0)->u.gso)" { size,
            type_ => "type", pad, features }),
        s!(io::netif::NetifExtraMcast => "__typeof__(((struct netif_extra_info *)0)->u.mcast)" {
            addr }),
        s!(io::netif::NetifExtraHash => "__typeof__(((struct netif_extra_info *)0)->u.hash)" {
            type_ => "type", algorithm, value }),
        s!(io::netif::NetifExtraUnion => "__typeof__(((struct netif_extra_info *)0)->u)" {}),
        s!(io::netif::NetifTxResponse => "struct netif_tx_response" { id, status }),
        s!(io::netif::NetifRxRequest => "struct netif_rx_request" { id, pad, gref }),
        s!(io::netif::NetifRxResponse => "struct netif_rx_response" { id, offset, flags, status }),
        s!(io::netif::NetifTxSringEntry => "union netif_tx_sring_entry" {}),
        s!(io::netif::NetifRxSringEntry => "union netif_rx_sring_entry" {}),
        s!(io::netif::NetifTxSring => "struct netif_tx_sring" { req_prod, req_event, rsp_prod,
            rsp_event, pvt => "pvt.pvt_pad", pad => "__pad", ring }),
        s!(io::netif::NetifRxSring => "struct netif_rx_sring" { req_prod, req_event, rsp_prod,
            rsp_event, pvt => "pvt.pvt_pad", pad => "__pad", ring }),
        s!(io::netif::XenNetifCtrlRequest => "struct xen_netif_ctrl_request" { id, type_ => "type",
            data }),
        s!(io::netif::XenNetifCtrlResponse => "struct xen_netif_ctrl_response" { id,
            type_ => "type", status, data }),
        s!(io::netif::XenNetifGref => "struct xen_netif_gref" { ref_ => "ref", flags, status }),
        // event_channel.h
        s!(EvtchnAllocUnbound => "struct evtchn_alloc_unbound" { dom, remote_dom, port }),
        s!(EvtchnBindInterdomain => "struct evtchn_bind_interdomain" { remote_dom, remote_port,
            local_port }),
        s!(EvtchnBindVirq => "struct evtchn_bind_virq" { virq, vcpu, port }),
        s!(EvtchnBindPirq => "struct evtchn_bind_pirq" { pirq, flags, port }),
        s!(EvtchnBindIpi => "struct evtchn_bind_ipi" { vcpu, port }),
        s!(EvtchnClose => "struct evtchn_close" { port }),
        s!(EvtchnSend => "struct evtchn_send" { port }),
        s!(EvtchnStatus => "struct evtchn_status" { dom, port, status, vcpu,
            u0 => "u.virq", u1 => "u.interdomain.port" }),
        s!(EvtchnBindVcpu => "struct evtchn_bind_vcpu" { port, vcpu }),
        s!(EvtchnUnmask => "struct evtchn_unmask" { port }),
        s!(EvtchnReset => "struct evtchn_reset" { dom }),
        s!(EvtchnOp => "struct evtchn_op" { cmd, u }),
        // version.h
        s!(XenCompileInfo => "struct xen_compile_info" { compiler, compile_by, compile_domain,
            compile_date }),
        s!(XenPlatformParameters => "struct xen_platform_parameters" { virt_start }),
        s!(XenFeatureInfo => "struct xen_feature_info" { submap_idx, submap }),
        // vcpu.h
        s!(VcpuRunstateInfo => "struct vcpu_runstate_info" { state, state_entry_time, time }),
        s!(VcpuRegisterRunstateMemoryArea => "struct vcpu_register_runstate_memory_area" {
            addr => "addr.p" }),
        s!(VcpuSetPeriodicTimer => "struct vcpu_set_periodic_timer" { period_ns }),
        s!(VcpuSetSingleshotTimer => "struct vcpu_set_singleshot_timer" { timeout_abs_ns, flags }),
        s!(VcpuRegisterVcpuInfo => "struct vcpu_register_vcpu_info" { mfn, offset, rsvd }),
        s!(VcpuGetPhysid => "struct vcpu_get_physid" { phys_id }),
        s!(VcpuRegisterTimeMemoryArea => "struct vcpu_register_time_memory_area" {
            addr => "addr.p" }),
        // physdev.h
        s!(PhysdevSetIopl => "struct physdev_set_iopl" { iopl }),
        s!(PhysdevSetIobitmap => "struct physdev_set_iobitmap" { bitmap => "bitmap.p", nr_ports }),
        s!(PhysdevEoi => "struct physdev_eoi" { irq }),
        s!(PhysdevIrqStatusQuery => "struct physdev_irq_status_query" { irq, flags }),
        s!(PhysdevMapPirq => "struct physdev_map_pirq" { domid, type_ => "type", index, pirq,
            bus, devfn, entry_nr, table_base }),
        s!(PhysdevUnmapPirq => "struct physdev_unmap_pirq" { domid, pirq }),
        s!(PhysdevSetupGsi => "struct physdev_setup_gsi" { gsi, triggering, polarity }),
        // memory.h
        s!(XenMemoryReservation => "struct xen_memory_reservation" {
            extent_start => "extent_start.p", nr_extents, extent_order, mem_flags, domid }),
        s!(XenMemoryExchange => "struct xen_memory_exchange" { in_ => "in", out, nr_exchanged }),
        s!(XenMachphysMfnList => "struct xen_machphys_mfn_list" { max_extents,
            extent_start => "extent_start.p", nr_extents }),
        s!(XenMachphysMapping => "struct xen_machphys_mapping" { v_start, v_end, max_mfn }),
        s!(XenAddToPhysmap => "struct xen_add_to_physmap" { domid, size, space, idx, gpfn }),
        s!(XenRemoveFromPhysmap => "struct xen_remove_from_physmap" { domid, gpfn }),
        s!(XenMemoryMap => "struct xen_memory_map" { nr_entries, buffer => "buffer.p" }),
        s!(XenForeignMemoryMap => "struct xen_foreign_memory_map" { domid, map }),
        // grant_table.h
        s!(GrantEntryV1 => "struct grant_entry_v1" { flags, domid, frame }),
        s!(GnttabMapGrantRef => "struct gnttab_map_grant_ref" { host_addr, flags,
            ref_ => "ref", dom, status, handle, dev_bus_addr }),
        s!(GnttabUnmapGrantRef => "struct gnttab_unmap_grant_ref" { host_addr, dev_bus_addr,
            handle, status }),
        s!(GnttabSetupTable => "struct gnttab_setup_table" { dom, nr_frames, status,
            frame_list => "frame_list.p" }),
        s!(GnttabDumpTable => "struct gnttab_dump_table" { dom, status }),
        s!(GnttabTransfer => "struct gnttab_transfer" { mfn, domid, ref_ => "ref", status }),
        s!(GnttabCopyPtr => "struct gnttab_copy_ptr" { u => "u.gmfn", domid, offset }),
        s!(GnttabCopy => "struct gnttab_copy" { source, dest, len, flags, status }),
        s!(GnttabQuerySize => "struct gnttab_query_size" { dom, nr_frames, max_nr_frames, status }),
        s!(GnttabUnmapAndReplace => "struct gnttab_unmap_and_replace" { host_addr, new_addr,
            handle, status }),
        s!(GnttabSetVersion => "struct gnttab_set_version" { version }),
        s!(GnttabGetVersion => "struct gnttab_get_version" { dom, pad, version }),
        // domctl.h (interface version 0x15)
        s!(XenDomctl => "struct xen_domctl" { cmd, interface_version, domain, _pad, u }),
        s!(XenArchDomainconfig => "struct xen_arch_domainconfig" { emulation_flags, misc_flags }),
        s!(XenDomctlCreatedomain => "struct xen_domctl_createdomain" { ssidref, handle, flags,
            iommu_opts, max_vcpus, max_evtchn_port, max_grant_frames, max_maptrack_frames,
            grant_opts, vmtrace_size, cpupool_id, arch }),
        s!(XenDomctlGetdomaininfo => "struct xen_domctl_getdomaininfo" { domain, pad1, flags,
            tot_pages, max_pages, outstanding_pages, shr_pages, paged_pages, shared_info_frame,
            cpu_time, nr_online_vcpus, max_vcpu_id, ssidref, handle, cpupool, gpaddr_bits, pad2,
            arch_config }),
        s!(XenctlBitmap => "struct xenctl_bitmap" { bitmap => "bitmap.p", nr_bits }),
        s!(XenDomctlMaxMem => "struct xen_domctl_max_mem" { max_memkb }),
        s!(XenDomctlVcpucontext => "struct xen_domctl_vcpucontext" { vcpu, ctxt => "ctxt.p" }),
        s!(XenDomctlGetvcpuinfo => "struct xen_domctl_getvcpuinfo" { vcpu, online, blocked,
            running, cpu_time, cpu }),
        s!(XenDomctlNodeaffinity => "struct xen_domctl_nodeaffinity" { nodemap }),
        s!(XenDomctlVcpuaffinity => "struct xen_domctl_vcpuaffinity" { vcpu, flags, cpumap_hard,
            cpumap_soft }),
        s!(XenDomctlMaxVcpus => "struct xen_domctl_max_vcpus" { max }),
        s!(XenDomctlSchedCredit => "struct xen_domctl_sched_credit" { weight, cap }),
        s!(XenDomctlSchedCredit2 => "struct xen_domctl_sched_credit2" { weight, cap }),
        s!(XenDomctlSchedRtds => "struct xen_domctl_sched_rtds" { period, budget, flags }),
        s!(XenDomctlSchedparamVcpu => "struct xen_domctl_schedparam_vcpu" { u, vcpuid }),
        s!(XenDomctlSchedVcpus => "__typeof__(((struct xen_domctl_scheduler_op *)0)->u.v)" {
            vcpus => "vcpus.p", nr_vcpus, padding }),
        s!(XenDomctlSchedulerOp => "struct xen_domctl_scheduler_op" { sched_id, cmd, u }),
        s!(XenDomctlSetdomainhandle => "struct xen_domctl_setdomainhandle" { handle }),
        s!(XenDomctlSetdebugging => "struct xen_domctl_setdebugging" { enable }),
        s!(XenDomctlIrqPermission => "struct xen_domctl_irq_permission" { pirq, allow_access, pad }),
        s!(XenDomctlIomemPermission => "struct xen_domctl_iomem_permission" { first_mfn, nr_mfns,
            allow_access }),
        s!(XenDomctlIoportPermission => "struct xen_domctl_ioport_permission" { first_port,
            nr_ports, allow_access }),
        s!(XenDomctlHypercallInit => "struct xen_domctl_hypercall_init" { gmfn }),
        s!(XenDomctlSettimeoffset => "struct xen_domctl_settimeoffset" { time_offset_seconds }),
        s!(XenDomctlAddressSize => "struct xen_domctl_address_size" { size }),
        s!(XenDomctlTscInfo => "struct xen_domctl_tsc_info" { tsc_mode, gtsc_khz, incarnation, pad,
            elapsed_nsec }),
        s!(XenDomctlSetVirqHandler => "struct xen_domctl_set_virq_handler" { virq }),
        // sysctl.h (interface version 0x15)
        s!(XenSysctl => "struct xen_sysctl" { cmd, interface_version, u }),
        s!(XenSysctlReadconsole => "struct xen_sysctl_readconsole" { clear, incremental, pad0,
            pad1, index, buffer => "buffer.p", count }),
        s!(XenSysctlPhysinfo => "struct xen_sysctl_physinfo" { threads_per_core,
            cores_per_socket, nr_cpus, max_cpu_id, nr_nodes, max_node_id, cpu_khz, capabilities,
            arch_capabilities, pad, total_pages, free_pages, scrub_pages, outstanding_pages,
            max_mfn, hw_cap }),
        s!(XenSysctlSchedId => "struct xen_sysctl_sched_id" { sched_id }),
        s!(XenSysctlGetdomaininfolist => "struct xen_sysctl_getdomaininfolist" { first_domain,
            max_domains, buffer => "buffer.p", num_domains }),
        s!(XenSysctlCpuinfo => "struct xen_sysctl_cpuinfo" { idletime }),
        s!(XenSysctlGetcpuinfo => "struct xen_sysctl_getcpuinfo" { max_cpus, info => "info.p",
            nr_cpus }),
        s!(XenSysctlCputopo => "struct xen_sysctl_cputopo" { core, socket, node }),
        s!(XenSysctlCputopoinfo => "struct xen_sysctl_cputopoinfo" { num_cpus,
            cputopo => "cputopo.p" }),
        s!(XenSysctlMeminfo => "struct xen_sysctl_meminfo" { memsize, memfree }),
        s!(XenSysctlNumainfo => "struct xen_sysctl_numainfo" { num_nodes, meminfo => "meminfo.p",
            distance => "distance.p" }),
        s!(XenSysctlCpupoolOp => "struct xen_sysctl_cpupool_op" { op, cpupool_id, sched_id, domid,
            cpu, n_dom, cpumap }),
        s!(XenSysctlCreditSchedule => "struct xen_sysctl_credit_schedule" { tslice_ms,
            ratelimit_us, vcpu_migr_delay_us }),
        s!(XenSysctlCredit2Schedule => "struct xen_sysctl_credit2_schedule" { ratelimit_us }),
        s!(XenSysctlSchedulerOp => "struct xen_sysctl_scheduler_op" { cpupool_id, sched_id, cmd,
            u }),
    ]
}

/// `k!(C_NAME = rust::VALUE)`: a constant the headers define.
macro_rules! k {
    ($c:ident = $r:expr) => {
        (stringify!($c), ($r) as i128)
    };
}

/// Constants, by their C name, with the Rust value.
fn constants() -> Vec<(&'static str, i128)> {
    use xen_abi::hypercall as h;
    use xen_abi::{
        callback::*, console::*, elfnote::*, event_channel::*, grant_table::*, memory::*, mm::*,
        physdev::*, sched::*, vcpu::*, version::*, xen::*,
    };
    vec![
        // hypercall numbers
        k!(__HYPERVISOR_set_trap_table = h::SET_TRAP_TABLE),
        k!(__HYPERVISOR_mmu_update = h::MMU_UPDATE),
        k!(__HYPERVISOR_set_gdt = h::SET_GDT),
        k!(__HYPERVISOR_stack_switch = h::STACK_SWITCH),
        k!(__HYPERVISOR_set_callbacks = h::SET_CALLBACKS),
        k!(__HYPERVISOR_fpu_taskswitch = h::FPU_TASKSWITCH),
        k!(__HYPERVISOR_sched_op_compat = h::SCHED_OP_COMPAT),
        k!(__HYPERVISOR_platform_op = h::PLATFORM_OP),
        k!(__HYPERVISOR_set_debugreg = h::SET_DEBUGREG),
        k!(__HYPERVISOR_get_debugreg = h::GET_DEBUGREG),
        k!(__HYPERVISOR_update_descriptor = h::UPDATE_DESCRIPTOR),
        k!(__HYPERVISOR_memory_op = h::MEMORY_OP),
        k!(__HYPERVISOR_multicall = h::MULTICALL),
        k!(__HYPERVISOR_update_va_mapping = h::UPDATE_VA_MAPPING),
        k!(__HYPERVISOR_set_timer_op = h::SET_TIMER_OP),
        k!(__HYPERVISOR_event_channel_op_compat = h::EVENT_CHANNEL_OP_COMPAT),
        k!(__HYPERVISOR_xen_version = h::XEN_VERSION),
        k!(__HYPERVISOR_console_io = h::CONSOLE_IO),
        k!(__HYPERVISOR_physdev_op_compat = h::PHYSDEV_OP_COMPAT),
        k!(__HYPERVISOR_grant_table_op = h::GRANT_TABLE_OP),
        k!(__HYPERVISOR_vm_assist = h::VM_ASSIST),
        k!(__HYPERVISOR_update_va_mapping_otherdomain = h::UPDATE_VA_MAPPING_OTHERDOMAIN),
        k!(__HYPERVISOR_iret = h::IRET),
        k!(__HYPERVISOR_vcpu_op = h::VCPU_OP),
        k!(__HYPERVISOR_set_segment_base = h::SET_SEGMENT_BASE),
        k!(__HYPERVISOR_mmuext_op = h::MMUEXT_OP),
        k!(__HYPERVISOR_xsm_op = h::XSM_OP),
        k!(__HYPERVISOR_nmi_op = h::NMI_OP),
        k!(__HYPERVISOR_sched_op = h::SCHED_OP),
        k!(__HYPERVISOR_callback_op = h::CALLBACK_OP),
        k!(__HYPERVISOR_xenoprof_op = h::XENOPROF_OP),
        k!(__HYPERVISOR_event_channel_op = h::EVENT_CHANNEL_OP),
        k!(__HYPERVISOR_physdev_op = h::PHYSDEV_OP),
        k!(__HYPERVISOR_hvm_op = h::HVM_OP),
        k!(__HYPERVISOR_sysctl = h::SYSCTL),
        k!(__HYPERVISOR_domctl = h::DOMCTL),
        k!(__HYPERVISOR_kexec_op = h::KEXEC_OP),
        k!(__HYPERVISOR_tmem_op = h::TMEM_OP),
        k!(__HYPERVISOR_argo_op = h::ARGO_OP),
        k!(__HYPERVISOR_xenpmu_op = h::XENPMU_OP),
        k!(__HYPERVISOR_dm_op = h::DM_OP),
        k!(__HYPERVISOR_hypfs_op = h::HYPFS_OP),
        // mm
        k!(MMU_NORMAL_PT_UPDATE = MMU_NORMAL_PT_UPDATE),
        k!(MMU_MACHPHYS_UPDATE = MMU_MACHPHYS_UPDATE),
        k!(MMU_PT_UPDATE_PRESERVE_AD = MMU_PT_UPDATE_PRESERVE_AD),
        k!(MMU_PT_UPDATE_NO_TRANSLATE = MMU_PT_UPDATE_NO_TRANSLATE),
        k!(MMUEXT_PIN_L1_TABLE = MMUEXT_PIN_L1_TABLE),
        k!(MMUEXT_PIN_L4_TABLE = MMUEXT_PIN_L4_TABLE),
        k!(MMUEXT_UNPIN_TABLE = MMUEXT_UNPIN_TABLE),
        k!(MMUEXT_NEW_BASEPTR = MMUEXT_NEW_BASEPTR),
        k!(MMUEXT_TLB_FLUSH_LOCAL = MMUEXT_TLB_FLUSH_LOCAL),
        k!(MMUEXT_INVLPG_LOCAL = MMUEXT_INVLPG_LOCAL),
        k!(MMUEXT_TLB_FLUSH_MULTI = MMUEXT_TLB_FLUSH_MULTI),
        k!(MMUEXT_INVLPG_MULTI = MMUEXT_INVLPG_MULTI),
        k!(MMUEXT_TLB_FLUSH_ALL = MMUEXT_TLB_FLUSH_ALL),
        k!(MMUEXT_INVLPG_ALL = MMUEXT_INVLPG_ALL),
        k!(MMUEXT_FLUSH_CACHE = MMUEXT_FLUSH_CACHE),
        k!(MMUEXT_SET_LDT = MMUEXT_SET_LDT),
        k!(MMUEXT_NEW_USER_BASEPTR = MMUEXT_NEW_USER_BASEPTR),
        k!(MMUEXT_CLEAR_PAGE = MMUEXT_CLEAR_PAGE),
        k!(MMUEXT_COPY_PAGE = MMUEXT_COPY_PAGE),
        k!(MMUEXT_FLUSH_CACHE_GLOBAL = MMUEXT_FLUSH_CACHE_GLOBAL),
        k!(MMUEXT_MARK_SUPER = MMUEXT_MARK_SUPER),
        k!(MMUEXT_UNMARK_SUPER = MMUEXT_UNMARK_SUPER),
        k!(UVMF_NONE = UVMF_NONE),
        k!(UVMF_TLB_FLUSH = UVMF_TLB_FLUSH),
        k!(UVMF_INVLPG = UVMF_INVLPG),
        k!(UVMF_FLUSHTYPE_MASK = UVMF_FLUSHTYPE_MASK),
        k!(UVMF_MULTI = UVMF_MULTI),
        k!(UVMF_LOCAL = UVMF_LOCAL),
        k!(UVMF_ALL = UVMF_ALL),
        k!(HYPERVISOR_VIRT_START = HYPERVISOR_VIRT_START),
        k!(HYPERVISOR_VIRT_END = HYPERVISOR_VIRT_END),
        k!(MACH2PHYS_VIRT_START = MACH2PHYS_VIRT_START),
        k!(MACH2PHYS_VIRT_END = MACH2PHYS_VIRT_END),
        k!(FLAT_RING3_CS32 = FLAT_RING3_CS32),
        k!(FLAT_RING3_CS64 = FLAT_RING3_CS64),
        k!(FLAT_RING3_DS32 = FLAT_RING3_DS32),
        k!(FLAT_RING3_DS64 = FLAT_RING3_DS64),
        k!(FLAT_RING3_SS32 = FLAT_RING3_SS32),
        k!(FLAT_RING3_SS64 = FLAT_RING3_SS64),
        k!(FLAT_KERNEL_CS = FLAT_KERNEL_CS),
        k!(FLAT_KERNEL_SS = FLAT_KERNEL_SS),
        k!(FLAT_KERNEL_DS64 = FLAT_KERNEL_DS64),
        k!(FLAT_USER_CS = FLAT_USER_CS),
        k!(FLAT_USER_SS = FLAT_USER_SS),
        // xen.h
        k!(DOMID_FIRST_RESERVED = DOMID_FIRST_RESERVED),
        k!(DOMID_SELF = DOMID_SELF),
        k!(DOMID_IO = DOMID_IO),
        k!(DOMID_XEN = DOMID_XEN),
        k!(DOMID_COW = DOMID_COW),
        k!(DOMID_INVALID = DOMID_INVALID),
        k!(DOMID_IDLE = DOMID_IDLE),
        k!(DOMID_MASK = DOMID_MASK),
        k!(XEN_LEGACY_MAX_VCPUS = XEN_LEGACY_MAX_VCPUS),
        k!(MAX_GUEST_CMDLINE = MAX_GUEST_CMDLINE),
        k!(EVTCHN_2L_NR_CHANNELS = EVTCHN_2L_NR_CHANNELS),
        k!(SIF_PRIVILEGED = SIF_PRIVILEGED),
        k!(SIF_INITDOMAIN = SIF_INITDOMAIN),
        k!(SIF_MULTIBOOT_MOD = SIF_MULTIBOOT_MOD),
        k!(SIF_MOD_START_PFN = SIF_MOD_START_PFN),
        k!(SIF_VIRT_P2M_4TOOLS = SIF_VIRT_P2M_4TOOLS),
        k!(SIF_PM_MASK = SIF_PM_MASK),
        k!(VGCF_in_syscall = VGCF_IN_SYSCALL),
        k!(VGCF_IN_SYSCALL = VGCF_IN_SYSCALL),
        k!(VGCF_i387_valid = VGCF_I387_VALID),
        k!(VGCF_in_kernel = VGCF_IN_KERNEL),
        k!(VGCF_failsafe_disables_events = VGCF_FAILSAFE_DISABLES_EVENTS),
        k!(VGCF_syscall_disables_events = VGCF_SYSCALL_DISABLES_EVENTS),
        k!(VGCF_online = VGCF_ONLINE),
        k!(VMASST_CMD_enable = VMASST_CMD_ENABLE),
        k!(VMASST_CMD_disable = VMASST_CMD_DISABLE),
        k!(VMASST_TYPE_4gb_segments = VMASST_TYPE_4GB_SEGMENTS),
        k!(VMASST_TYPE_4gb_segments_notify = VMASST_TYPE_4GB_SEGMENTS_NOTIFY),
        k!(VMASST_TYPE_writable_pagetables = VMASST_TYPE_WRITABLE_PAGETABLES),
        k!(VMASST_TYPE_pae_extended_cr3 = VMASST_TYPE_PAE_EXTENDED_CR3),
        k!(VMASST_TYPE_architectural_iopl = VMASST_TYPE_ARCHITECTURAL_IOPL),
        k!(VMASST_TYPE_runstate_update_flag = VMASST_TYPE_RUNSTATE_UPDATE_FLAG),
        k!(VMASST_TYPE_m2p_strict = VMASST_TYPE_M2P_STRICT),
        k!(VIRQ_TIMER = VIRQ_TIMER),
        k!(VIRQ_DEBUG = VIRQ_DEBUG),
        k!(VIRQ_CONSOLE = VIRQ_CONSOLE),
        k!(VIRQ_DOM_EXC = VIRQ_DOM_EXC),
        k!(VIRQ_TBUF = VIRQ_TBUF),
        k!(VIRQ_DEBUGGER = VIRQ_DEBUGGER),
        k!(VIRQ_XENOPROF = VIRQ_XENOPROF),
        k!(VIRQ_CON_RING = VIRQ_CON_RING),
        k!(VIRQ_PCPU_STATE = VIRQ_PCPU_STATE),
        k!(VIRQ_MEM_EVENT = VIRQ_MEM_EVENT),
        k!(VIRQ_ARGO = VIRQ_ARGO),
        k!(VIRQ_ENOMEM = VIRQ_ENOMEM),
        k!(VIRQ_XENPMU = VIRQ_XENPMU),
        k!(VIRQ_ARCH_0 = VIRQ_ARCH_0),
        k!(NR_VIRQS = NR_VIRQS),
        k!(CONSOLEIO_write = CONSOLEIO_WRITE),
        k!(CONSOLEIO_read = CONSOLEIO_READ),
        // callback.h
        k!(CALLBACKOP_register = CALLBACKOP_REGISTER),
        k!(CALLBACKOP_unregister = CALLBACKOP_UNREGISTER),
        k!(CALLBACKTYPE_event = CALLBACKTYPE_EVENT),
        k!(CALLBACKTYPE_failsafe = CALLBACKTYPE_FAILSAFE),
        k!(CALLBACKTYPE_syscall = CALLBACKTYPE_SYSCALL),
        k!(CALLBACKTYPE_sysenter_deprecated = CALLBACKTYPE_SYSENTER_DEPRECATED),
        k!(CALLBACKTYPE_nmi = CALLBACKTYPE_NMI),
        k!(CALLBACKTYPE_sysenter = CALLBACKTYPE_SYSENTER),
        k!(CALLBACKTYPE_syscall32 = CALLBACKTYPE_SYSCALL32),
        k!(CALLBACKF_mask_events = CALLBACKF_MASK_EVENTS),
        // sched.h
        k!(SCHEDOP_yield = SCHEDOP_YIELD),
        k!(SCHEDOP_block = SCHEDOP_BLOCK),
        k!(SCHEDOP_shutdown = SCHEDOP_SHUTDOWN),
        k!(SCHEDOP_poll = SCHEDOP_POLL),
        k!(SCHEDOP_remote_shutdown = SCHEDOP_REMOTE_SHUTDOWN),
        k!(SCHEDOP_shutdown_code = SCHEDOP_SHUTDOWN_CODE),
        k!(SCHEDOP_watchdog = SCHEDOP_WATCHDOG),
        k!(SCHEDOP_pin_override = SCHEDOP_PIN_OVERRIDE),
        k!(SHUTDOWN_poweroff = SHUTDOWN_POWEROFF),
        k!(SHUTDOWN_reboot = SHUTDOWN_REBOOT),
        k!(SHUTDOWN_suspend = SHUTDOWN_SUSPEND),
        k!(SHUTDOWN_crash = SHUTDOWN_CRASH),
        k!(SHUTDOWN_watchdog = SHUTDOWN_WATCHDOG),
        k!(SHUTDOWN_soft_reset = SHUTDOWN_SOFT_RESET),
        k!(SHUTDOWN_MAX = SHUTDOWN_MAX),
        // event_channel.h
        k!(EVTCHNOP_bind_interdomain = EVTCHNOP_BIND_INTERDOMAIN),
        k!(EVTCHNOP_bind_virq = EVTCHNOP_BIND_VIRQ),
        k!(EVTCHNOP_bind_pirq = EVTCHNOP_BIND_PIRQ),
        k!(EVTCHNOP_close = EVTCHNOP_CLOSE),
        k!(EVTCHNOP_send = EVTCHNOP_SEND),
        k!(EVTCHNOP_status = EVTCHNOP_STATUS),
        k!(EVTCHNOP_alloc_unbound = EVTCHNOP_ALLOC_UNBOUND),
        k!(EVTCHNOP_bind_ipi = EVTCHNOP_BIND_IPI),
        k!(EVTCHNOP_bind_vcpu = EVTCHNOP_BIND_VCPU),
        k!(EVTCHNOP_unmask = EVTCHNOP_UNMASK),
        k!(EVTCHNOP_reset = EVTCHNOP_RESET),
        k!(EVTCHNOP_init_control = EVTCHNOP_INIT_CONTROL),
        k!(EVTCHNOP_expand_array = EVTCHNOP_EXPAND_ARRAY),
        k!(EVTCHNOP_set_priority = EVTCHNOP_SET_PRIORITY),
        k!(EVTCHNSTAT_closed = EVTCHNSTAT_CLOSED),
        k!(EVTCHNSTAT_unbound = EVTCHNSTAT_UNBOUND),
        k!(EVTCHNSTAT_interdomain = EVTCHNSTAT_INTERDOMAIN),
        k!(EVTCHNSTAT_pirq = EVTCHNSTAT_PIRQ),
        k!(EVTCHNSTAT_virq = EVTCHNSTAT_VIRQ),
        k!(EVTCHNSTAT_ipi = EVTCHNSTAT_IPI),
        k!(BIND_PIRQ__WILL_SHARE = BIND_PIRQ_WILL_SHARE),
        // version.h / features.h
        k!(XENVER_version = XENVER_VERSION),
        k!(XENVER_extraversion = XENVER_EXTRAVERSION),
        k!(XENVER_compile_info = XENVER_COMPILE_INFO),
        k!(XENVER_capabilities = XENVER_CAPABILITIES),
        k!(XENVER_changeset = XENVER_CHANGESET),
        k!(XENVER_platform_parameters = XENVER_PLATFORM_PARAMETERS),
        k!(XENVER_get_features = XENVER_GET_FEATURES),
        k!(XENVER_pagesize = XENVER_PAGESIZE),
        k!(XENVER_guest_handle = XENVER_GUEST_HANDLE),
        k!(XENVER_commandline = XENVER_COMMANDLINE),
        k!(XENVER_build_id = XENVER_BUILD_ID),
        k!(XEN_EXTRAVERSION_LEN = XEN_EXTRAVERSION_LEN),
        k!(XEN_CAPABILITIES_INFO_LEN = XEN_CAPABILITIES_INFO_LEN),
        k!(XEN_CHANGESET_INFO_LEN = XEN_CHANGESET_INFO_LEN),
        k!(XENFEAT_writable_page_tables = XENFEAT_WRITABLE_PAGE_TABLES),
        k!(XENFEAT_writable_descriptor_tables = XENFEAT_WRITABLE_DESCRIPTOR_TABLES),
        k!(XENFEAT_auto_translated_physmap = XENFEAT_AUTO_TRANSLATED_PHYSMAP),
        k!(XENFEAT_supervisor_mode_kernel = XENFEAT_SUPERVISOR_MODE_KERNEL),
        k!(XENFEAT_pae_pgdir_above_4gb = XENFEAT_PAE_PGDIR_ABOVE_4GB),
        k!(XENFEAT_mmu_pt_update_preserve_ad = XENFEAT_MMU_PT_UPDATE_PRESERVE_AD),
        k!(XENFEAT_highmem_assist = XENFEAT_HIGHMEM_ASSIST),
        k!(XENFEAT_gnttab_map_avail_bits = XENFEAT_GNTTAB_MAP_AVAIL_BITS),
        k!(XENFEAT_hvm_callback_vector = XENFEAT_HVM_CALLBACK_VECTOR),
        k!(XENFEAT_hvm_safe_pvclock = XENFEAT_HVM_SAFE_PVCLOCK),
        k!(XENFEAT_hvm_pirqs = XENFEAT_HVM_PIRQS),
        k!(XENFEAT_dom0 = XENFEAT_DOM0),
        k!(XENFEAT_memory_op_vnode_supported = XENFEAT_MEMORY_OP_VNODE_SUPPORTED),
        k!(XENFEAT_ARM_SMCCC_supported = XENFEAT_ARM_SMCCC_SUPPORTED),
        k!(XENFEAT_linux_rsdp_unrestricted = XENFEAT_LINUX_RSDP_UNRESTRICTED),
        k!(XENFEAT_not_direct_mapped = XENFEAT_NOT_DIRECT_MAPPED),
        k!(XENFEAT_direct_mapped = XENFEAT_DIRECT_MAPPED),
        k!(XENFEAT_NR_SUBMAPS = XENFEAT_NR_SUBMAPS),
        // vcpu.h
        k!(VCPUOP_initialise = VCPUOP_INITIALISE),
        k!(VCPUOP_up = VCPUOP_UP),
        k!(VCPUOP_down = VCPUOP_DOWN),
        k!(VCPUOP_is_up = VCPUOP_IS_UP),
        k!(VCPUOP_get_runstate_info = VCPUOP_GET_RUNSTATE_INFO),
        k!(VCPUOP_register_runstate_memory_area = VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA),
        k!(VCPUOP_set_periodic_timer = VCPUOP_SET_PERIODIC_TIMER),
        k!(VCPUOP_stop_periodic_timer = VCPUOP_STOP_PERIODIC_TIMER),
        k!(VCPUOP_set_singleshot_timer = VCPUOP_SET_SINGLESHOT_TIMER),
        k!(VCPUOP_stop_singleshot_timer = VCPUOP_STOP_SINGLESHOT_TIMER),
        k!(VCPUOP_register_vcpu_info = VCPUOP_REGISTER_VCPU_INFO),
        k!(VCPUOP_send_nmi = VCPUOP_SEND_NMI),
        k!(VCPUOP_get_physid = VCPUOP_GET_PHYSID),
        k!(VCPUOP_register_vcpu_time_memory_area = VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA),
        k!(RUNSTATE_running = RUNSTATE_RUNNING),
        k!(RUNSTATE_runnable = RUNSTATE_RUNNABLE),
        k!(RUNSTATE_blocked = RUNSTATE_BLOCKED),
        k!(RUNSTATE_offline = RUNSTATE_OFFLINE),
        k!(XEN_RUNSTATE_UPDATE = XEN_RUNSTATE_UPDATE),
        k!(VCPU_SSHOTTMR_future = VCPU_SSHOTTMR_FUTURE),
        // physdev.h
        k!(PHYSDEVOP_IRQ_UNMASK_NOTIFY = PHYSDEVOP_IRQ_UNMASK_NOTIFY),
        k!(PHYSDEVOP_irq_status_query = PHYSDEVOP_IRQ_STATUS_QUERY),
        k!(PHYSDEVOP_set_iopl = PHYSDEVOP_SET_IOPL),
        k!(PHYSDEVOP_set_iobitmap = PHYSDEVOP_SET_IOBITMAP),
        k!(PHYSDEVOP_apic_read = PHYSDEVOP_APIC_READ),
        k!(PHYSDEVOP_apic_write = PHYSDEVOP_APIC_WRITE),
        k!(PHYSDEVOP_alloc_irq_vector = PHYSDEVOP_ALLOC_IRQ_VECTOR),
        k!(PHYSDEVOP_free_irq_vector = PHYSDEVOP_FREE_IRQ_VECTOR),
        k!(PHYSDEVOP_eoi = PHYSDEVOP_EOI),
        k!(PHYSDEVOP_map_pirq = PHYSDEVOP_MAP_PIRQ),
        k!(PHYSDEVOP_unmap_pirq = PHYSDEVOP_UNMAP_PIRQ),
        k!(PHYSDEVOP_manage_pci_add = PHYSDEVOP_MANAGE_PCI_ADD),
        k!(PHYSDEVOP_manage_pci_remove = PHYSDEVOP_MANAGE_PCI_REMOVE),
        k!(PHYSDEVOP_pirq_eoi_gmfn_v1 = PHYSDEVOP_PIRQ_EOI_GMFN_V1),
        k!(PHYSDEVOP_restore_msi = PHYSDEVOP_RESTORE_MSI),
        k!(PHYSDEVOP_manage_pci_add_ext = PHYSDEVOP_MANAGE_PCI_ADD_EXT),
        k!(PHYSDEVOP_setup_gsi = PHYSDEVOP_SETUP_GSI),
        k!(PHYSDEVOP_get_free_pirq = PHYSDEVOP_GET_FREE_PIRQ),
        k!(PHYSDEVOP_pci_mmcfg_reserved = PHYSDEVOP_PCI_MMCFG_RESERVED),
        k!(PHYSDEVOP_pci_device_add = PHYSDEVOP_PCI_DEVICE_ADD),
        k!(PHYSDEVOP_pci_device_remove = PHYSDEVOP_PCI_DEVICE_REMOVE),
        k!(PHYSDEVOP_restore_msi_ext = PHYSDEVOP_RESTORE_MSI_EXT),
        k!(PHYSDEVOP_pirq_eoi_gmfn_v2 = PHYSDEVOP_PIRQ_EOI_GMFN_V2),
        k!(PHYSDEVOP_dbgp_op = PHYSDEVOP_DBGP_OP),
        k!(PHYSDEVOP_prepare_msix = PHYSDEVOP_PREPARE_MSIX),
        k!(PHYSDEVOP_release_msix = PHYSDEVOP_RELEASE_MSIX),
        k!(XENIRQSTAT_needs_eoi = XENIRQSTAT_NEEDS_EOI),
        k!(XENIRQSTAT_shared = XENIRQSTAT_SHARED),
        k!(MAP_PIRQ_TYPE_MSI = MAP_PIRQ_TYPE_MSI),
        k!(MAP_PIRQ_TYPE_GSI = MAP_PIRQ_TYPE_GSI),
        k!(MAP_PIRQ_TYPE_UNKNOWN = MAP_PIRQ_TYPE_UNKNOWN),
        k!(MAP_PIRQ_TYPE_MSI_SEG = MAP_PIRQ_TYPE_MSI_SEG),
        k!(MAP_PIRQ_TYPE_MULTI_MSI = MAP_PIRQ_TYPE_MULTI_MSI),
        // memory.h
        k!(XENMEM_increase_reservation = XENMEM_INCREASE_RESERVATION),
        k!(XENMEM_decrease_reservation = XENMEM_DECREASE_RESERVATION),
        k!(XENMEM_maximum_ram_page = XENMEM_MAXIMUM_RAM_PAGE),
        k!(XENMEM_current_reservation = XENMEM_CURRENT_RESERVATION),
        k!(XENMEM_maximum_reservation = XENMEM_MAXIMUM_RESERVATION),
        k!(XENMEM_machphys_mfn_list = XENMEM_MACHPHYS_MFN_LIST),
        k!(XENMEM_populate_physmap = XENMEM_POPULATE_PHYSMAP),
        k!(XENMEM_add_to_physmap = XENMEM_ADD_TO_PHYSMAP),
        k!(XENMEM_memory_map = XENMEM_MEMORY_MAP),
        k!(XENMEM_machine_memory_map = XENMEM_MACHINE_MEMORY_MAP),
        k!(XENMEM_exchange = XENMEM_EXCHANGE),
        k!(XENMEM_machphys_mapping = XENMEM_MACHPHYS_MAPPING),
        k!(XENMEM_set_memory_map = XENMEM_SET_MEMORY_MAP),
        k!(XENMEM_maximum_gpfn = XENMEM_MAXIMUM_GPFN),
        k!(XENMEM_remove_from_physmap = XENMEM_REMOVE_FROM_PHYSMAP),
        k!(XENMEM_set_pod_target = XENMEM_SET_POD_TARGET),
        k!(XENMEM_get_pod_target = XENMEM_GET_POD_TARGET),
        k!(XENMEM_add_to_physmap_batch = XENMEM_ADD_TO_PHYSMAP_BATCH),
        k!(XENMEM_claim_pages = XENMEM_CLAIM_PAGES),
        k!(XENMEM_machphys_compat_mfn_list = XENMEM_MACHPHYS_COMPAT_MFN_LIST),
        k!(XENMEM_get_vnumainfo = XENMEM_GET_VNUMAINFO),
        k!(XENMEM_reserved_device_memory_map = XENMEM_RESERVED_DEVICE_MEMORY_MAP),
        k!(XENMEM_acquire_resource = XENMEM_ACQUIRE_RESOURCE),
        k!(XENMEMF_populate_on_demand = XENMEMF_POPULATE_ON_DEMAND),
        k!(XENMEMF_exact_node_request = XENMEMF_EXACT_NODE_REQUEST),
        k!(XENMEMF_vnode = XENMEMF_VNODE),
        k!(XENMAPSPACE_shared_info = XENMAPSPACE_SHARED_INFO),
        k!(XENMAPSPACE_grant_table = XENMAPSPACE_GRANT_TABLE),
        k!(XENMAPSPACE_gmfn = XENMAPSPACE_GMFN),
        k!(XENMAPSPACE_gmfn_range = XENMAPSPACE_GMFN_RANGE),
        k!(XENMAPSPACE_gmfn_foreign = XENMAPSPACE_GMFN_FOREIGN),
        k!(XENMAPSPACE_dev_mmio = XENMAPSPACE_DEV_MMIO),
        // grant_table.h
        k!(GNTTABOP_map_grant_ref = GNTTABOP_MAP_GRANT_REF),
        k!(GNTTABOP_unmap_grant_ref = GNTTABOP_UNMAP_GRANT_REF),
        k!(GNTTABOP_setup_table = GNTTABOP_SETUP_TABLE),
        k!(GNTTABOP_dump_table = GNTTABOP_DUMP_TABLE),
        k!(GNTTABOP_transfer = GNTTABOP_TRANSFER),
        k!(GNTTABOP_copy = GNTTABOP_COPY),
        k!(GNTTABOP_query_size = GNTTABOP_QUERY_SIZE),
        k!(GNTTABOP_unmap_and_replace = GNTTABOP_UNMAP_AND_REPLACE),
        k!(GNTTABOP_set_version = GNTTABOP_SET_VERSION),
        k!(GNTTABOP_get_status_frames = GNTTABOP_GET_STATUS_FRAMES),
        k!(GNTTABOP_get_version = GNTTABOP_GET_VERSION),
        k!(GNTTABOP_swap_grant_ref = GNTTABOP_SWAP_GRANT_REF),
        k!(GNTTABOP_cache_flush = GNTTABOP_CACHE_FLUSH),
        k!(GNTTAB_NR_RESERVED_ENTRIES = GNTTAB_NR_RESERVED_ENTRIES),
        k!(GNTTAB_RESERVED_CONSOLE = GNTTAB_RESERVED_CONSOLE),
        k!(GNTTAB_RESERVED_XENSTORE = GNTTAB_RESERVED_XENSTORE),
        k!(GTF_invalid = GTF_INVALID),
        k!(GTF_permit_access = GTF_PERMIT_ACCESS),
        k!(GTF_accept_transfer = GTF_ACCEPT_TRANSFER),
        k!(GTF_transitive = GTF_TRANSITIVE),
        k!(GTF_type_mask = GTF_TYPE_MASK),
        k!(GTF_readonly = GTF_READONLY),
        k!(GTF_reading = GTF_READING),
        k!(GTF_writing = GTF_WRITING),
        k!(GTF_PWT = GTF_PWT),
        k!(GTF_PCD = GTF_PCD),
        k!(GTF_PAT = GTF_PAT),
        k!(GTF_sub_page = GTF_SUB_PAGE),
        k!(GTF_transfer_committed = GTF_TRANSFER_COMMITTED),
        k!(GTF_transfer_completed = GTF_TRANSFER_COMPLETED),
        k!(GNTMAP_device_map = GNTMAP_DEVICE_MAP),
        k!(GNTMAP_host_map = GNTMAP_HOST_MAP),
        k!(GNTMAP_readonly = GNTMAP_READONLY),
        k!(GNTMAP_application_map = GNTMAP_APPLICATION_MAP),
        k!(GNTMAP_contains_pte = GNTMAP_CONTAINS_PTE),
        k!(GNTCOPY_source_gref = GNTCOPY_SOURCE_GREF),
        k!(GNTCOPY_dest_gref = GNTCOPY_DEST_GREF),
        k!(GNTST_okay = GNTST_OKAY),
        k!(GNTST_general_error = GNTST_GENERAL_ERROR),
        k!(GNTST_bad_domain = GNTST_BAD_DOMAIN),
        k!(GNTST_bad_gntref = GNTST_BAD_GNTREF),
        k!(GNTST_bad_handle = GNTST_BAD_HANDLE),
        k!(GNTST_bad_virt_addr = GNTST_BAD_VIRT_ADDR),
        k!(GNTST_bad_dev_addr = GNTST_BAD_DEV_ADDR),
        k!(GNTST_no_device_space = GNTST_NO_DEVICE_SPACE),
        k!(GNTST_permission_denied = GNTST_PERMISSION_DENIED),
        k!(GNTST_bad_page = GNTST_BAD_PAGE),
        k!(GNTST_bad_copy_arg = GNTST_BAD_COPY_ARG),
        k!(GNTST_address_too_big = GNTST_ADDRESS_TOO_BIG),
        k!(GNTST_eagain = GNTST_EAGAIN),
        k!(GNTST_no_space = GNTST_NO_SPACE),
        // elfnote.h
        k!(XEN_ELFNOTE_INFO = XEN_ELFNOTE_INFO),
        k!(XEN_ELFNOTE_ENTRY = XEN_ELFNOTE_ENTRY),
        k!(XEN_ELFNOTE_HYPERCALL_PAGE = XEN_ELFNOTE_HYPERCALL_PAGE),
        k!(XEN_ELFNOTE_VIRT_BASE = XEN_ELFNOTE_VIRT_BASE),
        k!(XEN_ELFNOTE_PADDR_OFFSET = XEN_ELFNOTE_PADDR_OFFSET),
        k!(XEN_ELFNOTE_XEN_VERSION = XEN_ELFNOTE_XEN_VERSION),
        k!(XEN_ELFNOTE_GUEST_OS = XEN_ELFNOTE_GUEST_OS),
        k!(XEN_ELFNOTE_GUEST_VERSION = XEN_ELFNOTE_GUEST_VERSION),
        k!(XEN_ELFNOTE_LOADER = XEN_ELFNOTE_LOADER),
        k!(XEN_ELFNOTE_PAE_MODE = XEN_ELFNOTE_PAE_MODE),
        k!(XEN_ELFNOTE_FEATURES = XEN_ELFNOTE_FEATURES),
        k!(XEN_ELFNOTE_BSD_SYMTAB = XEN_ELFNOTE_BSD_SYMTAB),
        k!(XEN_ELFNOTE_HV_START_LOW = XEN_ELFNOTE_HV_START_LOW),
        k!(XEN_ELFNOTE_L1_MFN_VALID = XEN_ELFNOTE_L1_MFN_VALID),
        k!(XEN_ELFNOTE_SUSPEND_CANCEL = XEN_ELFNOTE_SUSPEND_CANCEL),
        k!(XEN_ELFNOTE_INIT_P2M = XEN_ELFNOTE_INIT_P2M),
        k!(XEN_ELFNOTE_MOD_START_PFN = XEN_ELFNOTE_MOD_START_PFN),
        k!(XEN_ELFNOTE_SUPPORTED_FEATURES = XEN_ELFNOTE_SUPPORTED_FEATURES),
        k!(XEN_ELFNOTE_PHYS32_ENTRY = XEN_ELFNOTE_PHYS32_ENTRY),
        k!(XEN_ELFNOTE_MAX = XEN_ELFNOTE_MAX),
        k!(XEN_ELFNOTE_CRASH_INFO = XEN_ELFNOTE_CRASH_INFO),
        k!(XEN_ELFNOTE_CRASH_REGS = XEN_ELFNOTE_CRASH_REGS),
        k!(XEN_ELFNOTE_DUMPCORE_NONE = XEN_ELFNOTE_DUMPCORE_NONE),
        k!(XEN_ELFNOTE_DUMPCORE_HEADER = XEN_ELFNOTE_DUMPCORE_HEADER),
        k!(XEN_ELFNOTE_DUMPCORE_XEN_VERSION = XEN_ELFNOTE_DUMPCORE_XEN_VERSION),
        k!(XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION = XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION),
        // domctl.h
        k!(XEN_DOMCTL_INTERFACE_VERSION = domctl::XEN_DOMCTL_INTERFACE_VERSION),
        k!(XEN_DOMCTL_createdomain = domctl::XEN_DOMCTL_CREATEDOMAIN),
        k!(XEN_DOMCTL_destroydomain = domctl::XEN_DOMCTL_DESTROYDOMAIN),
        k!(XEN_DOMCTL_pausedomain = domctl::XEN_DOMCTL_PAUSEDOMAIN),
        k!(XEN_DOMCTL_unpausedomain = domctl::XEN_DOMCTL_UNPAUSEDOMAIN),
        k!(XEN_DOMCTL_getdomaininfo = domctl::XEN_DOMCTL_GETDOMAININFO),
        k!(XEN_DOMCTL_setvcpuaffinity = domctl::XEN_DOMCTL_SETVCPUAFFINITY),
        k!(XEN_DOMCTL_shadow_op = domctl::XEN_DOMCTL_SHADOW_OP),
        k!(XEN_DOMCTL_max_mem = domctl::XEN_DOMCTL_MAX_MEM),
        k!(XEN_DOMCTL_setvcpucontext = domctl::XEN_DOMCTL_SETVCPUCONTEXT),
        k!(XEN_DOMCTL_getvcpucontext = domctl::XEN_DOMCTL_GETVCPUCONTEXT),
        k!(XEN_DOMCTL_getvcpuinfo = domctl::XEN_DOMCTL_GETVCPUINFO),
        k!(XEN_DOMCTL_max_vcpus = domctl::XEN_DOMCTL_MAX_VCPUS),
        k!(XEN_DOMCTL_scheduler_op = domctl::XEN_DOMCTL_SCHEDULER_OP),
        k!(XEN_DOMCTL_setdomainhandle = domctl::XEN_DOMCTL_SETDOMAINHANDLE),
        k!(XEN_DOMCTL_setdebugging = domctl::XEN_DOMCTL_SETDEBUGGING),
        k!(XEN_DOMCTL_irq_permission = domctl::XEN_DOMCTL_IRQ_PERMISSION),
        k!(XEN_DOMCTL_iomem_permission = domctl::XEN_DOMCTL_IOMEM_PERMISSION),
        k!(XEN_DOMCTL_ioport_permission = domctl::XEN_DOMCTL_IOPORT_PERMISSION),
        k!(XEN_DOMCTL_hypercall_init = domctl::XEN_DOMCTL_HYPERCALL_INIT),
        k!(XEN_DOMCTL_settimeoffset = domctl::XEN_DOMCTL_SETTIMEOFFSET),
        k!(XEN_DOMCTL_getvcpuaffinity = domctl::XEN_DOMCTL_GETVCPUAFFINITY),
        k!(XEN_DOMCTL_real_mode_area = domctl::XEN_DOMCTL_REAL_MODE_AREA),
        k!(XEN_DOMCTL_resumedomain = domctl::XEN_DOMCTL_RESUMEDOMAIN),
        k!(XEN_DOMCTL_sendtrigger = domctl::XEN_DOMCTL_SENDTRIGGER),
        k!(XEN_DOMCTL_subscribe = domctl::XEN_DOMCTL_SUBSCRIBE),
        k!(XEN_DOMCTL_gethvmcontext = domctl::XEN_DOMCTL_GETHVMCONTEXT),
        k!(XEN_DOMCTL_sethvmcontext = domctl::XEN_DOMCTL_SETHVMCONTEXT),
        k!(XEN_DOMCTL_set_address_size = domctl::XEN_DOMCTL_SET_ADDRESS_SIZE),
        k!(XEN_DOMCTL_get_address_size = domctl::XEN_DOMCTL_GET_ADDRESS_SIZE),
        k!(XEN_DOMCTL_assign_device = domctl::XEN_DOMCTL_ASSIGN_DEVICE),
        k!(XEN_DOMCTL_bind_pt_irq = domctl::XEN_DOMCTL_BIND_PT_IRQ),
        k!(XEN_DOMCTL_memory_mapping = domctl::XEN_DOMCTL_MEMORY_MAPPING),
        k!(XEN_DOMCTL_ioport_mapping = domctl::XEN_DOMCTL_IOPORT_MAPPING),
        k!(XEN_DOMCTL_set_ext_vcpucontext = domctl::XEN_DOMCTL_SET_EXT_VCPUCONTEXT),
        k!(XEN_DOMCTL_get_ext_vcpucontext = domctl::XEN_DOMCTL_GET_EXT_VCPUCONTEXT),
        k!(XEN_DOMCTL_set_opt_feature = domctl::XEN_DOMCTL_SET_OPT_FEATURE),
        k!(XEN_DOMCTL_test_assign_device = domctl::XEN_DOMCTL_TEST_ASSIGN_DEVICE),
        k!(XEN_DOMCTL_set_target = domctl::XEN_DOMCTL_SET_TARGET),
        k!(XEN_DOMCTL_deassign_device = domctl::XEN_DOMCTL_DEASSIGN_DEVICE),
        k!(XEN_DOMCTL_unbind_pt_irq = domctl::XEN_DOMCTL_UNBIND_PT_IRQ),
        k!(XEN_DOMCTL_get_device_group = domctl::XEN_DOMCTL_GET_DEVICE_GROUP),
        k!(XEN_DOMCTL_debug_op = domctl::XEN_DOMCTL_DEBUG_OP),
        k!(XEN_DOMCTL_gethvmcontext_partial = domctl::XEN_DOMCTL_GETHVMCONTEXT_PARTIAL),
        k!(XEN_DOMCTL_vm_event_op = domctl::XEN_DOMCTL_VM_EVENT_OP),
        k!(XEN_DOMCTL_mem_sharing_op = domctl::XEN_DOMCTL_MEM_SHARING_OP),
        k!(XEN_DOMCTL_gettscinfo = domctl::XEN_DOMCTL_GETTSCINFO),
        k!(XEN_DOMCTL_settscinfo = domctl::XEN_DOMCTL_SETTSCINFO),
        k!(XEN_DOMCTL_getpageframeinfo3 = domctl::XEN_DOMCTL_GETPAGEFRAMEINFO3),
        k!(XEN_DOMCTL_setvcpuextstate = domctl::XEN_DOMCTL_SETVCPUEXTSTATE),
        k!(XEN_DOMCTL_getvcpuextstate = domctl::XEN_DOMCTL_GETVCPUEXTSTATE),
        k!(XEN_DOMCTL_set_access_required = domctl::XEN_DOMCTL_SET_ACCESS_REQUIRED),
        k!(XEN_DOMCTL_audit_p2m = domctl::XEN_DOMCTL_AUDIT_P2M),
        k!(XEN_DOMCTL_set_virq_handler = domctl::XEN_DOMCTL_SET_VIRQ_HANDLER),
        k!(XEN_DOMCTL_set_broken_page_p2m = domctl::XEN_DOMCTL_SET_BROKEN_PAGE_P2M),
        k!(XEN_DOMCTL_setnodeaffinity = domctl::XEN_DOMCTL_SETNODEAFFINITY),
        k!(XEN_DOMCTL_getnodeaffinity = domctl::XEN_DOMCTL_GETNODEAFFINITY),
        k!(XEN_DOMCTL_cacheflush = domctl::XEN_DOMCTL_CACHEFLUSH),
        k!(XEN_DOMCTL_get_vcpu_msrs = domctl::XEN_DOMCTL_GET_VCPU_MSRS),
        k!(XEN_DOMCTL_set_vcpu_msrs = domctl::XEN_DOMCTL_SET_VCPU_MSRS),
        k!(XEN_DOMCTL_setvnumainfo = domctl::XEN_DOMCTL_SETVNUMAINFO),
        k!(XEN_DOMCTL_psr_cmt_op = domctl::XEN_DOMCTL_PSR_CMT_OP),
        k!(XEN_DOMCTL_monitor_op = domctl::XEN_DOMCTL_MONITOR_OP),
        k!(XEN_DOMCTL_psr_alloc = domctl::XEN_DOMCTL_PSR_ALLOC),
        k!(XEN_DOMCTL_soft_reset = domctl::XEN_DOMCTL_SOFT_RESET),
        k!(XEN_DOMCTL_vuart_op = domctl::XEN_DOMCTL_VUART_OP),
        k!(XEN_DOMCTL_get_cpu_policy = domctl::XEN_DOMCTL_GET_CPU_POLICY),
        k!(XEN_DOMCTL_set_cpu_policy = domctl::XEN_DOMCTL_SET_CPU_POLICY),
        k!(XEN_DOMCTL_vmtrace_op = domctl::XEN_DOMCTL_VMTRACE_OP),
        k!(XEN_DOMCTL_get_paging_mempool_size = domctl::XEN_DOMCTL_GET_PAGING_MEMPOOL_SIZE),
        k!(XEN_DOMCTL_set_paging_mempool_size = domctl::XEN_DOMCTL_SET_PAGING_MEMPOOL_SIZE),
        k!(XEN_DOMCTL_gdbsx_guestmemio = domctl::XEN_DOMCTL_GDBSX_GUESTMEMIO),
        k!(XEN_DOMCTL_gdbsx_pausevcpu = domctl::XEN_DOMCTL_GDBSX_PAUSEVCPU),
        k!(XEN_DOMCTL_gdbsx_unpausevcpu = domctl::XEN_DOMCTL_GDBSX_UNPAUSEVCPU),
        k!(XEN_DOMCTL_gdbsx_domstatus = domctl::XEN_DOMCTL_GDBSX_DOMSTATUS),
        k!(XEN_X86_EMU_LAPIC = domctl::XEN_X86_EMU_LAPIC),
        k!(XEN_X86_EMU_HPET = domctl::XEN_X86_EMU_HPET),
        k!(XEN_X86_EMU_PM = domctl::XEN_X86_EMU_PM),
        k!(XEN_X86_EMU_RTC = domctl::XEN_X86_EMU_RTC),
        k!(XEN_X86_EMU_IOAPIC = domctl::XEN_X86_EMU_IOAPIC),
        k!(XEN_X86_EMU_PIC = domctl::XEN_X86_EMU_PIC),
        k!(XEN_X86_EMU_VGA = domctl::XEN_X86_EMU_VGA),
        k!(XEN_X86_EMU_IOMMU = domctl::XEN_X86_EMU_IOMMU),
        k!(XEN_X86_EMU_PIT = domctl::XEN_X86_EMU_PIT),
        k!(XEN_X86_EMU_USE_PIRQ = domctl::XEN_X86_EMU_USE_PIRQ),
        k!(XEN_X86_EMU_VPCI = domctl::XEN_X86_EMU_VPCI),
        k!(XEN_X86_EMU_ALL = domctl::XEN_X86_EMU_ALL),
        k!(XEN_X86_MSR_RELAXED = domctl::XEN_X86_MSR_RELAXED),
        k!(XEN_DOMCTL_CDF_hvm = domctl::XEN_DOMCTL_CDF_HVM),
        k!(XEN_DOMCTL_CDF_hap = domctl::XEN_DOMCTL_CDF_HAP),
        k!(XEN_DOMCTL_CDF_s3_integrity = domctl::XEN_DOMCTL_CDF_S3_INTEGRITY),
        k!(XEN_DOMCTL_CDF_oos_off = domctl::XEN_DOMCTL_CDF_OOS_OFF),
        k!(XEN_DOMCTL_CDF_xs_domain = domctl::XEN_DOMCTL_CDF_XS_DOMAIN),
        k!(XEN_DOMCTL_CDF_iommu = domctl::XEN_DOMCTL_CDF_IOMMU),
        k!(XEN_DOMCTL_CDF_nested_virt = domctl::XEN_DOMCTL_CDF_NESTED_VIRT),
        k!(XEN_DOMCTL_CDF_vpmu = domctl::XEN_DOMCTL_CDF_VPMU),
        k!(XEN_DOMCTL_CDF_MAX = domctl::XEN_DOMCTL_CDF_MAX),
        k!(XEN_DOMCTL_IOMMU_no_sharept = domctl::XEN_DOMCTL_IOMMU_NO_SHAREPT),
        k!(XEN_DOMCTL_IOMMU_MAX = domctl::XEN_DOMCTL_IOMMU_MAX),
        k!(XEN_DOMCTL_GRANT_version_mask = domctl::XEN_DOMCTL_GRANT_VERSION_MASK),
        k!(XEN_DOMINF_dying = domctl::XEN_DOMINF_DYING),
        k!(XEN_DOMINF_hvm_guest = domctl::XEN_DOMINF_HVM_GUEST),
        k!(XEN_DOMINF_shutdown = domctl::XEN_DOMINF_SHUTDOWN),
        k!(XEN_DOMINF_paused = domctl::XEN_DOMINF_PAUSED),
        k!(XEN_DOMINF_blocked = domctl::XEN_DOMINF_BLOCKED),
        k!(XEN_DOMINF_running = domctl::XEN_DOMINF_RUNNING),
        k!(XEN_DOMINF_debugged = domctl::XEN_DOMINF_DEBUGGED),
        k!(XEN_DOMINF_xs_domain = domctl::XEN_DOMINF_XS_DOMAIN),
        k!(XEN_DOMINF_hap = domctl::XEN_DOMINF_HAP),
        k!(XEN_DOMINF_shutdownmask = domctl::XEN_DOMINF_SHUTDOWNMASK),
        k!(XEN_DOMINF_shutdownshift = domctl::XEN_DOMINF_SHUTDOWNSHIFT),
        k!(XEN_INVALID_MAX_VCPU_ID = domctl::XEN_INVALID_MAX_VCPU_ID),
        k!(XEN_VCPUAFFINITY_HARD = domctl::XEN_VCPUAFFINITY_HARD),
        k!(XEN_VCPUAFFINITY_SOFT = domctl::XEN_VCPUAFFINITY_SOFT),
        k!(XEN_VCPUAFFINITY_FORCE = domctl::XEN_VCPUAFFINITY_FORCE),
        k!(XEN_SCHEDULER_CREDIT = domctl::XEN_SCHEDULER_CREDIT),
        k!(XEN_SCHEDULER_CREDIT2 = domctl::XEN_SCHEDULER_CREDIT2),
        k!(XEN_SCHEDULER_ARINC653 = domctl::XEN_SCHEDULER_ARINC653),
        k!(XEN_SCHEDULER_RTDS = domctl::XEN_SCHEDULER_RTDS),
        k!(XEN_SCHEDULER_NULL = domctl::XEN_SCHEDULER_NULL),
        k!(XEN_DOMCTL_SCHEDOP_putinfo = domctl::XEN_DOMCTL_SCHEDOP_PUTINFO),
        k!(XEN_DOMCTL_SCHEDOP_getinfo = domctl::XEN_DOMCTL_SCHEDOP_GETINFO),
        k!(XEN_DOMCTL_SCHEDOP_putvcpuinfo = domctl::XEN_DOMCTL_SCHEDOP_PUTVCPUINFO),
        k!(XEN_DOMCTL_SCHEDOP_getvcpuinfo = domctl::XEN_DOMCTL_SCHEDOP_GETVCPUINFO),
        k!(XEN_DOMCTL_SCHEDRT_extra = domctl::XEN_DOMCTL_SCHEDRT_EXTRA),
        // sysctl.h
        k!(XEN_SYSCTL_INTERFACE_VERSION = sysctl::XEN_SYSCTL_INTERFACE_VERSION),
        k!(XEN_SYSCTL_readconsole = sysctl::XEN_SYSCTL_READCONSOLE),
        k!(XEN_SYSCTL_tbuf_op = sysctl::XEN_SYSCTL_TBUF_OP),
        k!(XEN_SYSCTL_physinfo = sysctl::XEN_SYSCTL_PHYSINFO),
        k!(XEN_SYSCTL_sched_id = sysctl::XEN_SYSCTL_SCHED_ID),
        k!(XEN_SYSCTL_perfc_op = sysctl::XEN_SYSCTL_PERFC_OP),
        k!(XEN_SYSCTL_getdomaininfolist = sysctl::XEN_SYSCTL_GETDOMAININFOLIST),
        k!(XEN_SYSCTL_debug_keys = sysctl::XEN_SYSCTL_DEBUG_KEYS),
        k!(XEN_SYSCTL_getcpuinfo = sysctl::XEN_SYSCTL_GETCPUINFO),
        k!(XEN_SYSCTL_availheap = sysctl::XEN_SYSCTL_AVAILHEAP),
        k!(XEN_SYSCTL_get_pmstat = sysctl::XEN_SYSCTL_GET_PMSTAT),
        k!(XEN_SYSCTL_cpu_hotplug = sysctl::XEN_SYSCTL_CPU_HOTPLUG),
        k!(XEN_SYSCTL_pm_op = sysctl::XEN_SYSCTL_PM_OP),
        k!(XEN_SYSCTL_page_offline_op = sysctl::XEN_SYSCTL_PAGE_OFFLINE_OP),
        k!(XEN_SYSCTL_lockprof_op = sysctl::XEN_SYSCTL_LOCKPROF_OP),
        k!(XEN_SYSCTL_cputopoinfo = sysctl::XEN_SYSCTL_CPUTOPOINFO),
        k!(XEN_SYSCTL_numainfo = sysctl::XEN_SYSCTL_NUMAINFO),
        k!(XEN_SYSCTL_cpupool_op = sysctl::XEN_SYSCTL_CPUPOOL_OP),
        k!(XEN_SYSCTL_scheduler_op = sysctl::XEN_SYSCTL_SCHEDULER_OP),
        k!(XEN_SYSCTL_coverage_op = sysctl::XEN_SYSCTL_COVERAGE_OP),
        k!(XEN_SYSCTL_psr_cmt_op = sysctl::XEN_SYSCTL_PSR_CMT_OP),
        k!(XEN_SYSCTL_pcitopoinfo = sysctl::XEN_SYSCTL_PCITOPOINFO),
        k!(XEN_SYSCTL_psr_alloc = sysctl::XEN_SYSCTL_PSR_ALLOC),
        k!(XEN_SYSCTL_get_cpu_levelling_caps = sysctl::XEN_SYSCTL_GET_CPU_LEVELLING_CAPS),
        k!(XEN_SYSCTL_get_cpu_featureset = sysctl::XEN_SYSCTL_GET_CPU_FEATURESET),
        k!(XEN_SYSCTL_livepatch_op = sysctl::XEN_SYSCTL_LIVEPATCH_OP),
        k!(XEN_SYSCTL_get_cpu_policy = sysctl::XEN_SYSCTL_GET_CPU_POLICY),
        k!(XEN_SYSCTL_PHYSCAP_hvm = sysctl::XEN_SYSCTL_PHYSCAP_HVM),
        k!(XEN_SYSCTL_PHYSCAP_pv = sysctl::XEN_SYSCTL_PHYSCAP_PV),
        k!(XEN_SYSCTL_PHYSCAP_directio = sysctl::XEN_SYSCTL_PHYSCAP_DIRECTIO),
        k!(XEN_SYSCTL_PHYSCAP_hap = sysctl::XEN_SYSCTL_PHYSCAP_HAP),
        k!(XEN_SYSCTL_PHYSCAP_shadow = sysctl::XEN_SYSCTL_PHYSCAP_SHADOW),
        k!(XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share = sysctl::XEN_SYSCTL_PHYSCAP_IOMMU_HAP_PT_SHARE),
        k!(XEN_SYSCTL_PHYSCAP_vmtrace = sysctl::XEN_SYSCTL_PHYSCAP_VMTRACE),
        k!(XEN_SYSCTL_PHYSCAP_vpmu = sysctl::XEN_SYSCTL_PHYSCAP_VPMU),
        k!(XEN_SYSCTL_PHYSCAP_gnttab_v1 = sysctl::XEN_SYSCTL_PHYSCAP_GNTTAB_V1),
        k!(XEN_SYSCTL_PHYSCAP_gnttab_v2 = sysctl::XEN_SYSCTL_PHYSCAP_GNTTAB_V2),
        k!(XEN_SYSCTL_PHYSCAP_MAX = sysctl::XEN_SYSCTL_PHYSCAP_MAX),
        k!(XEN_INVALID_CORE_ID = sysctl::XEN_INVALID_CORE_ID),
        k!(XEN_INVALID_SOCKET_ID = sysctl::XEN_INVALID_SOCKET_ID),
        k!(XEN_INVALID_NODE_ID = sysctl::XEN_INVALID_NODE_ID),
        k!(XEN_SYSCTL_CPUPOOL_OP_CREATE = sysctl::XEN_SYSCTL_CPUPOOL_OP_CREATE),
        k!(XEN_SYSCTL_CPUPOOL_OP_DESTROY = sysctl::XEN_SYSCTL_CPUPOOL_OP_DESTROY),
        k!(XEN_SYSCTL_CPUPOOL_OP_INFO = sysctl::XEN_SYSCTL_CPUPOOL_OP_INFO),
        k!(XEN_SYSCTL_CPUPOOL_OP_ADDCPU = sysctl::XEN_SYSCTL_CPUPOOL_OP_ADDCPU),
        k!(XEN_SYSCTL_CPUPOOL_OP_RMCPU = sysctl::XEN_SYSCTL_CPUPOOL_OP_RMCPU),
        k!(XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN = sysctl::XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN),
        k!(XEN_SYSCTL_CPUPOOL_OP_FREEINFO = sysctl::XEN_SYSCTL_CPUPOOL_OP_FREEINFO),
        k!(XEN_SYSCTL_CPUPOOL_PAR_ANY = sysctl::XEN_SYSCTL_CPUPOOL_PAR_ANY),
        k!(XEN_SYSCTL_SCHEDOP_putinfo = sysctl::XEN_SYSCTL_SCHEDOP_PUTINFO),
        k!(XEN_SYSCTL_SCHEDOP_getinfo = sysctl::XEN_SYSCTL_SCHEDOP_GETINFO),
        k!(XEN_SYSCTL_SCHED_RATELIMIT_MAX = sysctl::XEN_SYSCTL_SCHED_RATELIMIT_MAX),
        k!(XEN_SYSCTL_SCHED_RATELIMIT_MIN = sysctl::XEN_SYSCTL_SCHED_RATELIMIT_MIN),
        k!(XEN_SYSCTL_CSCHED_TSLICE_MAX = sysctl::XEN_SYSCTL_CSCHED_TSLICE_MAX),
        k!(XEN_SYSCTL_CSCHED_TSLICE_MIN = sysctl::XEN_SYSCTL_CSCHED_TSLICE_MIN),
        k!(XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US = sysctl::XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US),
        // errno.h
        k!(XEN_EPERM = errno::EPERM.0),
        k!(XEN_ENOENT = errno::ENOENT.0),
        k!(XEN_ESRCH = errno::ESRCH.0),
        k!(XEN_EIO = errno::EIO.0),
        k!(XEN_ENXIO = errno::ENXIO.0),
        k!(XEN_E2BIG = errno::E2BIG.0),
        k!(XEN_ENOEXEC = errno::ENOEXEC.0),
        k!(XEN_EBADF = errno::EBADF.0),
        k!(XEN_ECHILD = errno::ECHILD.0),
        k!(XEN_EAGAIN = errno::EAGAIN.0),
        k!(XEN_ENOMEM = errno::ENOMEM.0),
        k!(XEN_EACCES = errno::EACCES.0),
        k!(XEN_EFAULT = errno::EFAULT.0),
        k!(XEN_EBUSY = errno::EBUSY.0),
        k!(XEN_EEXIST = errno::EEXIST.0),
        k!(XEN_EXDEV = errno::EXDEV.0),
        k!(XEN_ENODEV = errno::ENODEV.0),
        k!(XEN_EISDIR = errno::EISDIR.0),
        k!(XEN_EINVAL = errno::EINVAL.0),
        k!(XEN_ENFILE = errno::ENFILE.0),
        k!(XEN_EMFILE = errno::EMFILE.0),
        k!(XEN_ENOSPC = errno::ENOSPC.0),
        k!(XEN_EROFS = errno::EROFS.0),
        k!(XEN_EMLINK = errno::EMLINK.0),
        k!(XEN_EDOM = errno::EDOM.0),
        k!(XEN_ERANGE = errno::ERANGE.0),
        k!(XEN_EDEADLK = errno::EDEADLK.0),
        k!(XEN_ENAMETOOLONG = errno::ENAMETOOLONG.0),
        k!(XEN_ENOLCK = errno::ENOLCK.0),
        k!(XEN_ENOSYS = errno::ENOSYS.0),
        k!(XEN_ENOTEMPTY = errno::ENOTEMPTY.0),
        k!(XEN_ENODATA = errno::ENODATA.0),
        k!(XEN_ETIME = errno::ETIME.0),
        k!(XEN_EBADMSG = errno::EBADMSG.0),
        k!(XEN_EOVERFLOW = errno::EOVERFLOW.0),
        k!(XEN_EILSEQ = errno::EILSEQ.0),
        k!(XEN_ENOTSOCK = errno::ENOTSOCK.0),
        k!(XEN_EOPNOTSUPP = errno::EOPNOTSUPP.0),
        k!(XEN_EADDRINUSE = errno::EADDRINUSE.0),
        k!(XEN_EADDRNOTAVAIL = errno::EADDRNOTAVAIL.0),
        k!(XEN_ENOBUFS = errno::ENOBUFS.0),
        k!(XEN_EISCONN = errno::EISCONN.0),
        k!(XEN_ENOTCONN = errno::ENOTCONN.0),
        k!(XEN_ETIMEDOUT = errno::ETIMEDOUT.0),
        k!(XEN_ECONNREFUSED = errno::ECONNREFUSED.0),
        // io/xs_wire.h
        k!(XS_CONTROL = xs_wire::XS_CONTROL),
        k!(XS_DEBUG = xs_wire::XS_DEBUG),
        k!(XS_DIRECTORY = xs_wire::XS_DIRECTORY),
        k!(XS_READ = xs_wire::XS_READ),
        k!(XS_GET_PERMS = xs_wire::XS_GET_PERMS),
        k!(XS_WATCH = xs_wire::XS_WATCH),
        k!(XS_UNWATCH = xs_wire::XS_UNWATCH),
        k!(XS_TRANSACTION_START = xs_wire::XS_TRANSACTION_START),
        k!(XS_TRANSACTION_END = xs_wire::XS_TRANSACTION_END),
        k!(XS_INTRODUCE = xs_wire::XS_INTRODUCE),
        k!(XS_RELEASE = xs_wire::XS_RELEASE),
        k!(XS_GET_DOMAIN_PATH = xs_wire::XS_GET_DOMAIN_PATH),
        k!(XS_WRITE = xs_wire::XS_WRITE),
        k!(XS_MKDIR = xs_wire::XS_MKDIR),
        k!(XS_RM = xs_wire::XS_RM),
        k!(XS_SET_PERMS = xs_wire::XS_SET_PERMS),
        k!(XS_WATCH_EVENT = xs_wire::XS_WATCH_EVENT),
        k!(XS_ERROR = xs_wire::XS_ERROR),
        k!(XS_IS_DOMAIN_INTRODUCED = xs_wire::XS_IS_DOMAIN_INTRODUCED),
        k!(XS_RESUME = xs_wire::XS_RESUME),
        k!(XS_SET_TARGET = xs_wire::XS_SET_TARGET),
        k!(XS_RESET_WATCHES = xs_wire::XS_RESET_WATCHES),
        k!(XS_DIRECTORY_PART = xs_wire::XS_DIRECTORY_PART),
        k!(XS_TYPE_COUNT = xs_wire::XS_TYPE_COUNT),
        k!(XS_INVALID = xs_wire::XS_INVALID),
        k!(XS_WATCH_PATH = xs_wire::XS_WATCH_PATH),
        k!(XS_WATCH_TOKEN = xs_wire::XS_WATCH_TOKEN),
        k!(XENSTORE_RING_SIZE = xs_wire::XENSTORE_RING_SIZE),
        k!(XENSTORE_PAYLOAD_MAX = xs_wire::XENSTORE_PAYLOAD_MAX),
        k!(XENSTORE_ABS_PATH_MAX = xs_wire::XENSTORE_ABS_PATH_MAX),
        k!(XENSTORE_REL_PATH_MAX = xs_wire::XENSTORE_REL_PATH_MAX),
        k!(XENSTORE_SERVER_FEATURE_RECONNECTION = xs_wire::XENSTORE_SERVER_FEATURE_RECONNECTION),
        k!(XENSTORE_SERVER_FEATURE_ERROR = xs_wire::XENSTORE_SERVER_FEATURE_ERROR),
        k!(XENSTORE_CONNECTED = xs_wire::XENSTORE_CONNECTED),
        k!(XENSTORE_RECONNECT = xs_wire::XENSTORE_RECONNECT),
        k!(XENSTORE_ERROR_NONE = xs_wire::XENSTORE_ERROR_NONE),
        k!(XENSTORE_ERROR_COMM = xs_wire::XENSTORE_ERROR_COMM),
        k!(XENSTORE_ERROR_RINGIDX = xs_wire::XENSTORE_ERROR_RINGIDX),
        k!(XENSTORE_ERROR_PROTO = xs_wire::XENSTORE_ERROR_PROTO),
        (
            "MASK_XENSTORE_IDX(0x12345)",
            xs_wire::mask_xenstore_idx(0x12345) as i128,
        ),
        // xs_wire.h's xsd_errors[] table: its length and each entry's errno, in order
        // (the names are C's `#x` of those errno macros).
        (
            "sizeof(xsd_errors)/sizeof(xsd_errors[0])",
            xs_wire::XSD_ERRORS.len() as i128,
        ),
        // io/blkif.h, io/ring.h
        k!(BLKIF_OP_READ = io::blkif::BLKIF_OP_READ),
        k!(BLKIF_OP_WRITE = io::blkif::BLKIF_OP_WRITE),
        k!(BLKIF_OP_WRITE_BARRIER = io::blkif::BLKIF_OP_WRITE_BARRIER),
        k!(BLKIF_OP_FLUSH_DISKCACHE = io::blkif::BLKIF_OP_FLUSH_DISKCACHE),
        k!(BLKIF_OP_RESERVED_1 = io::blkif::BLKIF_OP_RESERVED_1),
        k!(BLKIF_OP_DISCARD = io::blkif::BLKIF_OP_DISCARD),
        k!(BLKIF_OP_INDIRECT = io::blkif::BLKIF_OP_INDIRECT),
        k!(BLKIF_MAX_SEGMENTS_PER_REQUEST = io::blkif::BLKIF_MAX_SEGMENTS_PER_REQUEST),
        k!(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = io::blkif::BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST),
        k!(BLKIF_DISCARD_SECURE = io::blkif::BLKIF_DISCARD_SECURE),
        k!(BLKIF_RSP_EOPNOTSUPP = io::blkif::BLKIF_RSP_EOPNOTSUPP),
        k!(BLKIF_RSP_ERROR = io::blkif::BLKIF_RSP_ERROR),
        k!(BLKIF_RSP_OKAY = io::blkif::BLKIF_RSP_OKAY),
        k!(VDISK_CDROM = io::blkif::VDISK_CDROM),
        k!(VDISK_REMOVABLE = io::blkif::VDISK_REMOVABLE),
        k!(VDISK_READONLY = io::blkif::VDISK_READONLY),
        k!(XEN_PAGE_SHIFT = io::ring::XEN_PAGE_SHIFT),
        (
            "__CONST_RING_SIZE(blkif,4096)",
            io::blkif::BLKIF_RING_SIZE as i128,
        ),
        (
            "__CONST_RING_SIZE(blkif,8192)",
            io::ring::ring_size(8192, 112) as i128,
        ),
        (
            "offsetof(blkif_sring_t,ring)",
            io::ring::SRING_HEADER_SIZE as i128,
        ),
        (
            "sizeof(((blkif_sring_t*)0)->ring[0])",
            io::blkif::BLKIF_SRING_ENTRY_SIZE as i128,
        ),
        (
            "(1<<XEN_PAGE_SHIFT)/sizeof(((blkif_request_t*)0)->seg[0])",
            io::blkif::BLKIF_SEGS_PER_INDIRECT_FRAME as i128,
        ),
        ("__RD32(36)", io::ring::rd32(36) as i128),
        ("__RD32(0x12345678)", io::ring::rd32(0x1234_5678) as i128),
        ("__RD32(1)", io::ring::rd32(1) as i128),
        (
            "XEN_FLEX_RING_SIZE(1)",
            io::ring::xen_flex_ring_size(1) as i128,
        ),
        // io/netif.h
        k!(XEN_NETIF_NR_SLOTS_MIN = io::netif::XEN_NETIF_NR_SLOTS_MIN),
        k!(_NETTXF_csum_blank = io::netif::_NETTXF_CSUM_BLANK),
        k!(NETTXF_csum_blank = io::netif::NETTXF_CSUM_BLANK),
        k!(_NETTXF_data_validated = io::netif::_NETTXF_DATA_VALIDATED),
        k!(NETTXF_data_validated = io::netif::NETTXF_DATA_VALIDATED),
        k!(_NETTXF_more_data = io::netif::_NETTXF_MORE_DATA),
        k!(NETTXF_more_data = io::netif::NETTXF_MORE_DATA),
        k!(_NETTXF_extra_info = io::netif::_NETTXF_EXTRA_INFO),
        k!(NETTXF_extra_info = io::netif::NETTXF_EXTRA_INFO),
        k!(XEN_NETIF_MAX_TX_SIZE = io::netif::XEN_NETIF_MAX_TX_SIZE),
        k!(XEN_NETIF_EXTRA_TYPE_NONE = io::netif::XEN_NETIF_EXTRA_TYPE_NONE),
        k!(XEN_NETIF_EXTRA_TYPE_GSO = io::netif::XEN_NETIF_EXTRA_TYPE_GSO),
        k!(XEN_NETIF_EXTRA_TYPE_MCAST_ADD = io::netif::XEN_NETIF_EXTRA_TYPE_MCAST_ADD),
        k!(XEN_NETIF_EXTRA_TYPE_MCAST_DEL = io::netif::XEN_NETIF_EXTRA_TYPE_MCAST_DEL),
        k!(XEN_NETIF_EXTRA_TYPE_HASH = io::netif::XEN_NETIF_EXTRA_TYPE_HASH),
        k!(XEN_NETIF_EXTRA_TYPE_MAX = io::netif::XEN_NETIF_EXTRA_TYPE_MAX),
        k!(_XEN_NETIF_EXTRA_FLAG_MORE = io::netif::_XEN_NETIF_EXTRA_FLAG_MORE),
        k!(XEN_NETIF_EXTRA_FLAG_MORE = io::netif::XEN_NETIF_EXTRA_FLAG_MORE),
        k!(XEN_NETIF_GSO_TYPE_NONE = io::netif::XEN_NETIF_GSO_TYPE_NONE),
        k!(XEN_NETIF_GSO_TYPE_TCPV4 = io::netif::XEN_NETIF_GSO_TYPE_TCPV4),
        k!(XEN_NETIF_GSO_TYPE_TCPV6 = io::netif::XEN_NETIF_GSO_TYPE_TCPV6),
        k!(_NETRXF_data_validated = io::netif::_NETRXF_DATA_VALIDATED),
        k!(NETRXF_data_validated = io::netif::NETRXF_DATA_VALIDATED),
        k!(_NETRXF_csum_blank = io::netif::_NETRXF_CSUM_BLANK),
        k!(NETRXF_csum_blank = io::netif::NETRXF_CSUM_BLANK),
        k!(_NETRXF_more_data = io::netif::_NETRXF_MORE_DATA),
        k!(NETRXF_more_data = io::netif::NETRXF_MORE_DATA),
        k!(_NETRXF_extra_info = io::netif::_NETRXF_EXTRA_INFO),
        k!(NETRXF_extra_info = io::netif::NETRXF_EXTRA_INFO),
        k!(_NETRXF_gso_prefix = io::netif::_NETRXF_GSO_PREFIX),
        k!(NETRXF_gso_prefix = io::netif::NETRXF_GSO_PREFIX),
        k!(NETIF_RSP_DROPPED = io::netif::NETIF_RSP_DROPPED),
        k!(NETIF_RSP_ERROR = io::netif::NETIF_RSP_ERROR),
        k!(NETIF_RSP_OKAY = io::netif::NETIF_RSP_OKAY),
        k!(NETIF_RSP_NULL = io::netif::NETIF_RSP_NULL),
        k!(_XEN_NETIF_CTRL_HASH_TYPE_IPV4 = io::netif::_XEN_NETIF_CTRL_HASH_TYPE_IPV4),
        k!(XEN_NETIF_CTRL_HASH_TYPE_IPV4 = io::netif::XEN_NETIF_CTRL_HASH_TYPE_IPV4),
        k!(_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP = io::netif::_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP),
        k!(XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP = io::netif::XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP),
        k!(_XEN_NETIF_CTRL_HASH_TYPE_IPV6 = io::netif::_XEN_NETIF_CTRL_HASH_TYPE_IPV6),
        k!(XEN_NETIF_CTRL_HASH_TYPE_IPV6 = io::netif::XEN_NETIF_CTRL_HASH_TYPE_IPV6),
        k!(_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP = io::netif::_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP),
        k!(XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP = io::netif::XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP),
        k!(XEN_NETIF_CTRL_HASH_ALGORITHM_NONE = io::netif::XEN_NETIF_CTRL_HASH_ALGORITHM_NONE),
        k!(XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ =
            io::netif::XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ),
        k!(XEN_NETIF_CTRL_TYPE_INVALID = io::netif::XEN_NETIF_CTRL_TYPE_INVALID),
        k!(XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS = io::netif::XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS),
        k!(XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS = io::netif::XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS),
        k!(XEN_NETIF_CTRL_TYPE_SET_HASH_KEY = io::netif::XEN_NETIF_CTRL_TYPE_SET_HASH_KEY),
        k!(XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE =
            io::netif::XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE),
        k!(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE =
            io::netif::XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE),
        k!(XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING = io::netif::XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING),
        k!(XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM =
            io::netif::XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM),
        k!(XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE =
            io::netif::XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE),
        k!(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING = io::netif::XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING),
        k!(XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING = io::netif::XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING),
        k!(XEN_NETIF_CTRL_STATUS_SUCCESS = io::netif::XEN_NETIF_CTRL_STATUS_SUCCESS),
        k!(XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED = io::netif::XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED),
        k!(XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER =
            io::netif::XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER),
        k!(XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW =
            io::netif::XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW),
        k!(_XEN_NETIF_CTRLF_GREF_readonly = io::netif::_XEN_NETIF_CTRLF_GREF_READONLY),
        k!(XEN_NETIF_CTRLF_GREF_readonly = io::netif::XEN_NETIF_CTRLF_GREF_READONLY),
        (
            "__CONST_RING_SIZE(netif_tx,4096)",
            io::netif::NET_TX_RING_SIZE as i128,
        ),
        (
            "__CONST_RING_SIZE(netif_rx,4096)",
            io::netif::NET_RX_RING_SIZE as i128,
        ),
        (
            "__CONST_RING_SIZE(xen_netif_ctrl,4096)",
            io::netif::XEN_NETIF_CTRL_RING_SIZE as i128,
        ),
        (
            "sizeof(((netif_tx_sring_t*)0)->ring[0])",
            io::netif::NETIF_TX_SRING_ENTRY_SIZE as i128,
        ),
        (
            "sizeof(((netif_rx_sring_t*)0)->ring[0])",
            io::netif::NETIF_RX_SRING_ENTRY_SIZE as i128,
        ),
        (
            "sizeof(((xen_netif_ctrl_sring_t*)0)->ring[0])",
            io::netif::XEN_NETIF_CTRL_SRING_ENTRY_SIZE as i128,
        ),
        (
            "offsetof(netif_tx_sring_t,ring)",
            io::ring::SRING_HEADER_SIZE as i128,
        ),
        // io/protocols.h: the strings' lengths (sizeof a literal counts its NUL).
        (
            "sizeof(XEN_IO_PROTO_ABI_X86_32)-1",
            io::protocols::XEN_IO_PROTO_ABI_X86_32.len() as i128,
        ),
        (
            "sizeof(XEN_IO_PROTO_ABI_X86_64)-1",
            io::protocols::XEN_IO_PROTO_ABI_X86_64.len() as i128,
        ),
        (
            "sizeof(XEN_IO_PROTO_ABI_NATIVE)-1",
            io::protocols::XEN_IO_PROTO_ABI_NATIVE.len() as i128,
        ),
    ]
    .into_iter()
    .chain(xsd_errors_errnums())
    .collect()
}

/// `("xsd_errors[i].errnum", value)` for each entry of [`xs_wire::XSD_ERRORS`].
fn xsd_errors_errnums() -> Vec<(&'static str, i128)> {
    const KEYS: [&str; 16] = [
        "xsd_errors[0].errnum",
        "xsd_errors[1].errnum",
        "xsd_errors[2].errnum",
        "xsd_errors[3].errnum",
        "xsd_errors[4].errnum",
        "xsd_errors[5].errnum",
        "xsd_errors[6].errnum",
        "xsd_errors[7].errnum",
        "xsd_errors[8].errnum",
        "xsd_errors[9].errnum",
        "xsd_errors[10].errnum",
        "xsd_errors[11].errnum",
        "xsd_errors[12].errnum",
        "xsd_errors[13].errnum",
        "xsd_errors[14].errnum",
        "xsd_errors[15].errnum",
    ];
    KEYS.iter()
        .zip(xs_wire::XSD_ERRORS)
        .map(|(k, e)| (*k, e.errnum.0 as i128))
        .collect()
}

const HEADERS: &[&str] = &[
    "xen/xen.h",
    "xen/callback.h",
    "xen/event_channel.h",
    "xen/sched.h",
    "xen/vcpu.h",
    "xen/version.h",
    "xen/physdev.h",
    "xen/memory.h",
    "xen/grant_table.h",
    "xen/elfnote.h",
    "xen/features.h",
    "xen/io/console.h",
    // libc's errno.h first: xs_wire.h defines its `xsd_errors` table only `#ifdef EINVAL`.
    "errno.h",
    "xen/io/xs_wire.h",
    "xen/io/blkif.h",
    "xen/io/netif.h",
    "xen/io/protocols.h",
    "xen/domctl.h",
    "xen/sysctl.h",
];

const INSTALL_HINT: &str = "install Xen's public headers and a C compiler: \
     `sudo apt-get install libxen-dev gcc` (Debian/Ubuntu)";

/// The C program: one `S`, `F` or `K` line per item.
fn c_program(structs: &[Struct], consts: &[(&str, i128)]) -> String {
    let mut c = String::new();
    // __XEN_TOOLS__ selects the latest interface version (and exposes the tools-only
    // definitions such as iret_context and VGCF_in_syscall), as Xen itself is built.
    c.push_str("#define __XEN_TOOLS__ 1\n#include <stdint.h>\n#include <stddef.h>\n");
    c.push_str("#include <stdio.h>\n");
    for h in HEADERS {
        let _ = writeln!(c, "#include <{h}>");
    }
    // errno.h's default include is `enum xen_errno { XEN_EPERM = 1, ... }`.
    c.push_str("#include <xen/errno.h>\n");
    c.push_str("int main(void) {\n");
    for s in structs {
        let _ = writeln!(c, "  printf(\"S {} %zu\\n\", sizeof({}));", s.rust, s.c);
        for f in &s.fields {
            let _ = writeln!(
                c,
                "  printf(\"F {}.{} %zu %zu\\n\", offsetof({}, {}), sizeof((({} *)0)->{}));",
                s.rust, f.rust, s.c, f.c, s.c, f.c
            );
        }
    }
    for (name, _) in consts {
        let _ = writeln!(c, "  printf(\"K {name} %lld\\n\", (long long)({name}));");
    }
    c.push_str("  return 0;\n}\n");
    c
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("abi_conformance");
    std::fs::create_dir_all(&d).expect("create test tmp dir");
    d
}

/// Compile and run the C program, returning its stdout.
fn run_c(program: &str) -> String {
    if !Path::new("/usr/include/xen/xen.h").exists() && std::env::var_os("XEN_INCLUDE").is_none() {
        panic!("Xen public headers not found (/usr/include/xen/xen.h): {INSTALL_HINT}");
    }
    let dir = out_dir();
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, program).expect("write abi.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    if let Some(inc) = std::env::var_os("XEN_INCLUDE") {
        cmd.arg("-I").arg(inc);
    }
    cmd.args(["-std=gnu11", "-Wall", "-o"]).arg(&exe).arg(&src);
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run C compiler `{cc}` ({e}): {INSTALL_HINT}"),
    };
    if !out.status.success() {
        panic!(
            "compiling {} against the Xen headers failed ({INSTALL_HINT}):\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let run = Command::new(&exe).output().expect("run the ABI probe");
    assert!(run.status.success(), "ABI probe failed");
    String::from_utf8(run.stdout).expect("probe prints ASCII")
}

#[test]
fn layouts_and_constants_match_xen_headers() {
    let structs = structs();
    let consts = constants();
    let text = run_c(&c_program(&structs, &consts));

    let mut c_vals: BTreeMap<String, Vec<u128>> = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (_kind, key) = (it.next(), it.next().expect("key").to_string());
        let vals = it
            .map(|v| v.parse::<i128>().expect("number") as u128)
            .collect();
        c_vals.insert(key, vals);
    }

    let mut errors = Vec::new();
    let mut checked = 0;
    for s in &structs {
        let c = &c_vals[s.rust];
        checked += 1;
        if c[0] != s.size as u128 {
            errors.push(format!(
                "sizeof({}) = {} but size_of::<{}>() = {}",
                s.c, c[0], s.rust, s.size
            ));
        }
        for f in &s.fields {
            let c = &c_vals[&format!("{}.{}", s.rust, f.rust)];
            checked += 1;
            if c[0] != f.offset as u128 || c[1] != f.size as u128 {
                errors.push(format!(
                    "{}.{}: C offset {} size {}, Rust {}.{} offset {} size {}",
                    s.c, f.c, c[0], c[1], s.rust, f.rust, f.offset, f.size
                ));
            }
        }
    }
    for (name, val) in &consts {
        let c = c_vals[*name][0] as i128;
        checked += 1;
        // Compare as 64-bit patterns so u64 constants above i64::MAX match.
        if c as i64 != *val as i64 {
            errors.push(format!("{name}: C {c:#x}, Rust {val:#x}"));
        }
    }
    assert!(
        errors.is_empty(),
        "{} ABI mismatches with Xen's headers:\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
    eprintln!(
        "abi_conformance: {} structs, {} checks against Xen's headers, all equal",
        structs.len(),
        checked
    );
}

/// `io::ring::SringHeader` (no C struct of its own) lies exactly over the head of
/// `struct blkif_sring`, whose layout the header check above pins.
#[test]
fn sring_header_is_the_head_of_every_sring() {
    use io::blkif::BlkifSring as B;
    use io::ring::SringHeader as H;
    assert_eq!(size_of::<H>(), offset_of!(B, ring));
    assert_eq!(offset_of!(H, req_prod), offset_of!(B, req_prod));
    assert_eq!(offset_of!(H, req_event), offset_of!(B, req_event));
    assert_eq!(offset_of!(H, rsp_prod), offset_of!(B, rsp_prod));
    assert_eq!(offset_of!(H, rsp_event), offset_of!(B, rsp_event));
    assert_eq!(offset_of!(H, pvt), offset_of!(B, pvt));
    assert_eq!(offset_of!(H, pad), offset_of!(B, pad));
}

/// Layouts Xen keeps outside its public headers: pinned here by hand.
#[test]
fn private_layouts() {
    assert_eq!(size_of::<memory::E820Entry>(), 20);
    assert_eq!(xen::START_INFO_MAGIC, b"xen-3.0-x86_64");
    assert_eq!(
        xen::XEN_EMULATE_PREFIX,
        [0x0f, 0x0b, b'x', b'e', b'n'],
        "ud2; .ascii \"xen\""
    );
}
