//! The hypercall table: one `match` from number to handler (STYLE.md 8).
//!
//! Every handler decodes and validates its arguments first and changes state only once
//! nothing can fail; guest pointers are read and written through `guest_mem`. Unknown
//! hypercalls and sub-ops return `-ENOSYS`.

use crate::domain::{DomId, Domain, DomainTable, Shutdown};
use crate::pv::{self, write_arg, After};
use crate::shinfo::SharedInfo;
use xen_abi::errno::*;
use xen_abi::hypercall as hc;

/// A hypercall's result.
pub enum Ret {
    Value(u64),
    Err(Errno),
    /// Not finished: re-execute with these arguments (a continuation).
    Continue([u64; 5]),
    /// Not finished: re-execute unchanged (waiting for other CPUs to let go).
    Restart,
}

impl From<Result<u64, Errno>> for Ret {
    fn from(r: Result<u64, Errno>) -> Ret {
        match r {
            Ok(v) => Ret::Value(v),
            Err(e) => Ret::Err(e),
        }
    }
}

/// Version we report: Xen 4.17's ABI.
pub const XEN_MAJOR: u64 = 4;
pub const XEN_MINOR: u64 = 17;
pub const EXTRAVERSION: &[u8] = b"-rhv";

/// Run hypercall `nr` for vCPU `vi` of domain `dom`. `depth` is 1 inside a multicall.
///
/// Hypercalls that may touch other domains get the whole table; the rest their own
/// domain only.
pub fn dispatch(
    t: &mut DomainTable,
    dom: DomId,
    vi: usize,
    nr: u64,
    a: [u64; 5],
    depth: u32,
) -> (Ret, After) {
    crate::traps::doing(hypercall_name(nr));
    match nr {
        hc::DOMCTL => return (crate::control::domctl(t, dom, vi, a[0]), After::Resume),
        hc::SYSCTL => return (crate::control::sysctl(t, dom, vi, a[0]), After::Resume),
        hc::EVENT_CHANNEL_OP => {
            return (
                crate::events::event_channel_op(t, dom, vi, a).into(),
                After::Resume,
            )
        }
        hc::MEMORY_OP => return (crate::mm::memory_op(t, dom, vi, a), After::Resume),
        hc::MMU_UPDATE => return crate::mm::mmu_update(t, dom, vi, a),
        hc::MMUEXT_OP => return crate::mm::mmuext_op(t, dom, vi, a),
        hc::MULTICALL if depth == 0 => return multicall(t, dom, vi, a),
        hc::SCHED_OP if a[0] as u32 == xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN => {
            return (remote_shutdown(t, dom, vi, a[1]).into(), After::Resume)
        }
        hc::VCPU_OP if a[0] as u32 == xen_abi::vcpu::VCPUOP_INITIALISE => {
            return (
                vcpu_initialise(t, dom, vi, a[1], a[2]).into(),
                After::Resume,
            )
        }
        hc::GRANT_TABLE_OP => return (crate::gnttab::grant_table_op(t, dom, vi, a), After::Resume),
        _ => {}
    }
    let Some(d) = t.get(dom) else {
        return (Ret::Err(ESRCH), After::Stopped);
    };
    if d.vcpus.get(vi).is_none() {
        return (Ret::Err(EINVAL), After::Stopped);
    }
    match nr {
        hc::CONSOLE_IO => (console_io(d, vi, a).into(), After::Resume),
        hc::XEN_VERSION => (xen_version(d, vi, a).into(), After::Resume),
        hc::SCHED_OP => sched_op(d, vi, a),
        hc::SET_TRAP_TABLE => (set_trap_table(d, vi, a[0]).into(), After::Resume),
        hc::SET_DEBUGREG => (
            d.vcpus
                .get_mut(vi)
                .map_or(Err(EINVAL), |v| crate::debugreg::set(v, a[0], a[1]))
                .into(),
            After::Resume,
        ),
        hc::GET_DEBUGREG => (
            d.vcpus
                .get(vi)
                .map_or(Err(EINVAL), |v| crate::debugreg::get(v, a[0]))
                .into(),
            After::Resume,
        ),
        hc::SET_GDT => (
            crate::desc::set_gdt(d, vi, a[0], a[1]).into(),
            After::Resume,
        ),
        hc::UPDATE_DESCRIPTOR => (
            crate::desc::update_descriptor(d, vi, a[0], a[1]).into(),
            After::Resume,
        ),
        hc::SET_CALLBACKS => (set_callbacks(d, vi, a).into(), After::Resume),
        hc::CALLBACK_OP => (callback_op(d, vi, a).into(), After::Resume),
        hc::STACK_SWITCH => (stack_switch(d, vi, a).into(), After::Resume),
        hc::FPU_TASKSWITCH => (fpu_taskswitch(d, vi, a[0]).into(), After::Resume),
        hc::SET_SEGMENT_BASE => (set_segment_base(d, vi, a).into(), After::Resume),
        hc::VM_ASSIST => (vm_assist(d, a).into(), After::Resume),
        hc::PHYSDEV_OP => (physdev_op(d, vi, a).into(), After::Resume),
        hc::SET_TIMER_OP => (set_timer_op(d, vi, a[0]).into(), After::Resume),
        hc::VCPU_OP => (vcpu_op(d, vi, a).into(), After::Resume),
        hc::UPDATE_VA_MAPPING => crate::mm::update_va_mapping(d, vi, a),
        // Nested multicalls are refused; an `iret` inside one ends it (XSA-213, H3).
        hc::IRET if depth == 1 => (Ret::Value(0), After::Iret),
        hc::MULTICALL | hc::IRET => (Ret::Err(EINVAL), After::Resume),
        _ => (Ret::Err(ENOSYS), After::Resume),
    }
}

/// What a CPU is doing while it runs hypercall `nr` (for the fault report).
fn hypercall_name(nr: u64) -> &'static &'static str {
    const NAMES: [&str; 43] = [
        "hypercall set_trap_table",
        "hypercall mmu_update",
        "hypercall set_gdt",
        "hypercall stack_switch",
        "hypercall set_callbacks",
        "hypercall fpu_taskswitch",
        "hypercall sched_op_compat",
        "hypercall platform_op",
        "hypercall set_debugreg",
        "hypercall get_debugreg",
        "hypercall update_descriptor",
        "hypercall 11",
        "hypercall memory_op",
        "hypercall multicall",
        "hypercall update_va_mapping",
        "hypercall set_timer_op",
        "hypercall event_channel_op_compat",
        "hypercall xen_version",
        "hypercall console_io",
        "hypercall physdev_op_compat",
        "hypercall grant_table_op",
        "hypercall vm_assist",
        "hypercall update_va_mapping_otherdomain",
        "hypercall iret",
        "hypercall vcpu_op",
        "hypercall set_segment_base",
        "hypercall mmuext_op",
        "hypercall xsm_op",
        "hypercall nmi_op",
        "hypercall sched_op",
        "hypercall callback_op",
        "hypercall xenoprof_op",
        "hypercall event_channel_op",
        "hypercall physdev_op",
        "hypercall hvm_op",
        "hypercall sysctl",
        "hypercall domctl",
        "hypercall kexec_op",
        "hypercall tmem_op",
        "hypercall argo_op",
        "hypercall xenpmu_op",
        "hypercall dm_op",
        "hypercall hypfs_op",
    ];
    static UNKNOWN: &str = "an unknown hypercall";
    NAMES.get(nr as usize).unwrap_or(&UNKNOWN)
}

fn vcpu(d: &Domain, vi: usize) -> Result<&crate::domain::Vcpu, Errno> {
    d.vcpus.get(vi).map(|b| &**b).ok_or(EINVAL)
}

fn console_io(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    const CONSOLEIO_WRITE: u64 = 0;
    const CONSOLEIO_READ: u64 = 1;
    if !d.privileged {
        // As Xen's release builds: only the hardware domain uses the hypervisor console.
        return Err(EPERM);
    }
    let v = vcpu(d, vi)?;
    let count = a[1];
    match a[0] {
        CONSOLEIO_WRITE => {
            if count > (1 << 20) {
                return Err(EINVAL);
            }
            let mut buf = [0u8; 128];
            let mut done = 0u64;
            while done < count {
                let n = (count - done).min(128) as usize;
                crate::guest_mem::copy_from_guest(
                    pv::current_l4(v),
                    a[2].wrapping_add(done),
                    &mut buf[..n],
                )
                .map_err(|_| EFAULT)?;
                crate::console::write_guest(&buf[..n]);
                done += n as u64;
            }
            Ok(0)
        }
        CONSOLEIO_READ => {
            let mut buf = [0u8; 128];
            let want = count.min(128) as usize;
            let n = crate::console::read_input(&mut buf[..want]);
            crate::guest_mem::copy_to_guest(pv::current_l4(v), a[2], &buf[..n])
                .map_err(|_| EFAULT)?;
            Ok(n as u64)
        }
        _ => Err(ENOSYS),
    }
}

fn copy_cstr(v: &crate::domain::Vcpu, va: u64, s: &[u8], len: usize) -> Result<u64, Errno> {
    let mut buf = [0u8; 1024];
    let n = s.len().min(len - 1).min(buf.len() - 1);
    buf[..n].copy_from_slice(&s[..n]);
    crate::guest_mem::copy_to_guest(pv::current_l4(v), va, &buf[..len.min(buf.len())])
        .map_err(|_| EFAULT)?;
    Ok(0)
}

fn xen_version(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::version::*;
    let v = vcpu(d, vi)?;
    match a[0] as u32 {
        XENVER_VERSION => Ok((XEN_MAJOR << 16) | XEN_MINOR),
        XENVER_EXTRAVERSION => copy_cstr(v, a[1], EXTRAVERSION, 16),
        XENVER_COMPILE_INFO => {
            let mut ci = [0u8; 144];
            ci[..4].copy_from_slice(b"rust");
            ci[64..68].copy_from_slice(b"rhv\0");
            crate::guest_mem::copy_to_guest(pv::current_l4(v), a[1], &ci).map_err(|_| EFAULT)?;
            Ok(0)
        }
        XENVER_CAPABILITIES => copy_cstr(v, a[1], b"xen-3.0-x86_64 ", 1024),
        XENVER_CHANGESET => copy_cstr(v, a[1], b"rust-hypervisor", 64),
        XENVER_PLATFORM_PARAMETERS => {
            write_arg(v, a[1], &xen_abi::mm::HYPERVISOR_VIRT_START)?;
            Ok(0)
        }
        XENVER_GET_FEATURES => {
            let mut fi: [u32; 2] = [0; 2];
            let mut b = [0u8; 8];
            crate::guest_mem::copy_from_guest(pv::current_l4(v), a[1], &mut b)
                .map_err(|_| EFAULT)?;
            fi[0] = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            // Features of a 64-bit PV guest on Xen 4.17: writable descriptor tables? no;
            // mmu_pt_update_preserve_ad, gnttab_map_avail_bits, dom0 flag for dom0.
            fi[1] = if fi[0] == 0 {
                (1 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD)
                    | (1 << XENFEAT_GNTTAB_MAP_AVAIL_BITS)
                    | if d.privileged { 1 << 11 } else { 0 }
            } else {
                0
            };
            b[4..8].copy_from_slice(&fi[1].to_le_bytes());
            crate::guest_mem::copy_to_guest(pv::current_l4(v), a[1], &b).map_err(|_| EFAULT)?;
            Ok(0)
        }
        XENVER_PAGESIZE => Ok(4096),
        XENVER_GUEST_HANDLE => {
            crate::guest_mem::copy_to_guest(pv::current_l4(v), a[1], &[0u8; 16])
                .map_err(|_| EFAULT)?;
            Ok(0)
        }
        XENVER_COMMANDLINE => {
            if !d.privileged {
                return Err(EPERM);
            }
            let cl = crate::start::hv_cmdline();
            copy_cstr(v, a[1], cl.as_bytes(), 1024)
        }
        _ => Err(ENOSYS),
    }
}

fn sched_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> (Ret, After) {
    use xen_abi::sched::*;
    let Ok(v) = vcpu(d, vi) else {
        return (Ret::Err(EINVAL), After::Stopped);
    };
    match a[0] as u32 {
        SCHEDOP_YIELD => (Ret::Value(0), After::Resume),
        SCHEDOP_BLOCK => {
            // Blocking atomically re-enables event delivery.
            SharedInfo::new(d.shared_info_mfn).set_upcall_mask(v.id, false);
            (Ret::Value(0), After::Block)
        }
        SCHEDOP_SHUTDOWN => {
            let mut b = [0u8; 4];
            let r = crate::guest_mem::copy_from_guest(pv::current_l4(v), a[1], &mut b)
                .map(|_| u32::from_le_bytes(b))
                .map_err(|_| EFAULT);
            match r {
                Ok(reason) if reason <= SHUTDOWN_MAX => {
                    log::info!(
                        "d{}: shutdown requested, reason {reason} ({})",
                        d.id,
                        shutdown_name(reason)
                    );
                    d.shutdown = Some(Shutdown::Guest(reason));
                    (Ret::Value(0), After::Stopped)
                }
                Ok(_) => (Ret::Err(EINVAL), After::Resume),
                Err(e) => (Ret::Err(e), After::Resume),
            }
        }
        SCHEDOP_POLL => crate::events::sched_poll(d, vi, a[1]),
        SCHEDOP_SHUTDOWN_CODE => (Ret::Value(0), After::Resume),
        _ => (Ret::Err(ENOSYS), After::Resume),
    }
}

pub fn shutdown_name(reason: u32) -> &'static str {
    match reason {
        0 => "poweroff",
        1 => "reboot",
        2 => "suspend",
        3 => "crash",
        4 => "watchdog",
        5 => "soft_reset",
        _ => "unknown",
    }
}

fn set_trap_table(d: &mut Domain, vi: usize, ptr: u64) -> Result<u64, Errno> {
    let l4 = pv::current_l4(vcpu(d, vi)?);
    let mut table = [crate::domain::TrapInfo::default(); 256];
    if ptr != 0 {
        for i in 0..256u64 {
            let mut b = [0u8; 16];
            crate::guest_mem::copy_from_guest(l4, ptr.wrapping_add(i * 16), &mut b)
                .map_err(|_| EFAULT)?;
            let address =
                u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
            if address == 0 {
                break;
            }
            pv::guest_addr_ok(address)?;
            let vec = b[0] as usize;
            table[vec] = crate::domain::TrapInfo {
                address,
                cs: u16::from_le_bytes([b[2], b[3]]),
                flags: b[1],
            };
        }
    }
    // Decoded and validated: now perform.
    let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
    if ptr == 0 {
        v.traps = table;
    } else {
        for (i, t) in table.iter().enumerate() {
            if t.address != 0 {
                v.traps[i] = *t;
            }
        }
    }
    Ok(0)
}

fn set_callbacks(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    for &addr in &a[..3] {
        if addr != 0 {
            pv::guest_addr_ok(addr)?;
        }
    }
    let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
    v.event_callback = a[0];
    v.failsafe_callback = a[1];
    v.syscall_callback = a[2];
    Ok(0)
}

fn callback_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::callback::*;
    let v = vcpu(d, vi)?;
    let l4 = pv::current_l4(v);
    let mut b = [0u8; 16];
    match a[0] as u32 {
        CALLBACKOP_REGISTER => {
            crate::guest_mem::copy_from_guest(l4, a[1], &mut b).map_err(|_| EFAULT)?;
            let ty = u16::from_le_bytes([b[0], b[1]]);
            let flags = u16::from_le_bytes([b[2], b[3]]);
            let addr = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
            if addr != 0 {
                pv::guest_addr_ok(addr)?;
            }
            let mask = flags & CALLBACKF_MASK_EVENTS != 0;
            let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
            match ty {
                CALLBACKTYPE_EVENT => v.event_callback = addr,
                CALLBACKTYPE_FAILSAFE => {
                    v.failsafe_callback = addr;
                    v.failsafe_masks_events = mask;
                }
                CALLBACKTYPE_SYSCALL => {
                    v.syscall_callback = addr;
                    v.syscall_masks_events = mask;
                }
                CALLBACKTYPE_NMI => v.nmi_callback = addr,
                // 32-bit compat entry points are accepted and unused (no 32-bit user).
                7 | CALLBACKTYPE_SYSENTER => {}
                // As Xen's register_guest_callback.
                _ => return Err(ENOSYS),
            }
            Ok(0)
        }
        CALLBACKOP_UNREGISTER => {
            crate::guest_mem::copy_from_guest(l4, a[1], &mut b[..4]).map_err(|_| EFAULT)?;
            let ty = u16::from_le_bytes([b[0], b[1]]);
            if ty != CALLBACKTYPE_NMI {
                return Err(EINVAL);
            }
            d.vcpus.get_mut(vi).ok_or(EINVAL)?.nmi_callback = 0;
            Ok(0)
        }
        _ => Err(ENOSYS),
    }
}

fn stack_switch(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
    v.kernel_ss = a[0] | 3;
    v.kernel_sp = a[1];
    Ok(0)
}

fn fpu_taskswitch(d: &mut Domain, vi: usize, set: u64) -> Result<u64, Errno> {
    let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
    v.fpu_ts = set != 0;
    if v.fpu_ts {
        crate::arch::x86::stts();
    } else {
        crate::arch::x86::clts();
    }
    Ok(0)
}

fn set_segment_base(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    const SEGBASE_FS: u64 = 0;
    const SEGBASE_GS_USER: u64 = 1;
    const SEGBASE_GS_KERNEL: u64 = 2;
    const SEGBASE_GS_USER_SEL: u64 = 3;
    let base = a[1];
    let top = base >> 47;
    if a[0] != SEGBASE_GS_USER_SEL && top != 0 && top != 0x1ffff {
        return Err(EINVAL);
    }
    let v = d.vcpus.get_mut(vi).ok_or(EINVAL)?;
    match a[0] {
        SEGBASE_FS => v.fs_base = base,
        SEGBASE_GS_USER => v.gs_base_user = base,
        SEGBASE_GS_KERNEL => v.gs_base_kernel = base,
        SEGBASE_GS_USER_SEL => {
            // Only the null selector exists for 64-bit PV user code here.
            if base & !3 != 0 {
                return Err(EINVAL);
            }
            v.gs_base_user = 0;
        }
        _ => return Err(EINVAL),
    }
    pv::load_mode(v);
    Ok(0)
}

fn vm_assist(d: &mut Domain, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::xen::*;
    // Xen 4.17's VMASST_ALLOWED for 64-bit PV guests.
    let allowed: u64 = (1 << 0)
        | (1 << 1)
        | (1 << VMASST_TYPE_WRITABLE_PAGETABLES)
        | (1 << 3)
        | (1 << VMASST_TYPE_ARCHITECTURAL_IOPL)
        | (1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG)
        | (1 << 32);
    let ty = a[1];
    if ty >= 64 || allowed & (1 << ty) == 0 {
        return Err(EINVAL);
    }
    match a[0] as u32 {
        VMASST_CMD_ENABLE => d.vm_assist |= 1 << ty,
        VMASST_CMD_DISABLE => d.vm_assist &= !(1 << ty),
        // As Xen's vm_assist: the type is checked first, then the command.
        _ => return Err(ENOSYS),
    }
    Ok(0)
}

fn physdev_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::physdev::*;
    let rd = |d: &Domain, buf: &mut [u8]| -> Result<(), Errno> {
        let v = vcpu(d, vi)?;
        crate::guest_mem::copy_from_guest(pv::current_l4(v), a[1], buf).map_err(|_| EFAULT)
    };
    let wr = |d: &Domain, off: u64, buf: &[u8]| -> Result<(), Errno> {
        let v = vcpu(d, vi)?;
        crate::guest_mem::copy_to_guest(pv::current_l4(v), a[1].wrapping_add(off), buf)
            .map_err(|_| EFAULT)
    };
    let i32_at = |b: &[u8], i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let cmd = u32::try_from(a[0]).map_err(|_| ENOSYS)?;
    // Device interrupts belong to the control domain (XSA-237: privilege first).
    let privileged_only = matches!(
        cmd,
        PHYSDEVOP_MAP_PIRQ | PHYSDEVOP_UNMAP_PIRQ | PHYSDEVOP_SETUP_GSI
    );
    if privileged_only && !d.privileged {
        return Err(EPERM);
    }
    // Mapping into another domain (passthrough) is not offered.
    let self_only = |dom: u16| dom == xen_abi::xen::DOMID_SELF || dom == d.id;
    match cmd {
        PHYSDEVOP_SET_IOPL => {
            let mut b = [0u8; 4];
            rd(d, &mut b)?;
            let iopl = u32::from_le_bytes(b);
            if iopl > 3 {
                return Err(EINVAL);
            }
            d.vcpus.get_mut(vi).ok_or(EINVAL)?.iopl = iopl;
            Ok(0)
        }
        PHYSDEVOP_MAP_PIRQ => {
            let mut b = [0u8; 40];
            rd(d, &mut b)?;
            let domid = u16::from_le_bytes([b[0], b[1]]);
            let (ty, index, want) = (i32_at(&b, 4), i32_at(&b, 8), i32_at(&b, 12));
            if !self_only(domid) || ty != MAP_PIRQ_TYPE_GSI {
                return Err(EINVAL);
            }
            // Check the OUT field is writable before changing anything.
            wr(d, 12, &want.to_le_bytes())?;
            let pirq = crate::events::map_pirq(d, index, want)?;
            wr(d, 12, &pirq.to_le_bytes())?;
            Ok(0)
        }
        PHYSDEVOP_UNMAP_PIRQ => {
            let mut b = [0u8; 8];
            rd(d, &mut b)?;
            let domid = u16::from_le_bytes([b[0], b[1]]);
            let pirq = u32::try_from(i32_at(&b, 4)).map_err(|_| EINVAL)?;
            if !self_only(domid) {
                return Err(EINVAL);
            }
            crate::events::unmap_pirq(d, pirq).map(|()| 0)
        }
        PHYSDEVOP_SETUP_GSI => {
            let mut b = [0u8; 8];
            rd(d, &mut b)?;
            let gsi = u32::try_from(i32_at(&b, 0)).map_err(|_| EINVAL)?;
            let (level, low) = (b[4], b[5]);
            if gsi >= crate::arch::ioapic::nr_gsis() || level > 1 || low > 1 {
                return Err(EINVAL);
            }
            if crate::arch::ioapic::reserved(gsi) {
                return Err(EBUSY);
            }
            if crate::events::gsi_in_use(gsi) {
                return Err(EEXIST);
            }
            crate::arch::ioapic::set_signal(gsi, level == 1, low == 1);
            Ok(0)
        }
        PHYSDEVOP_EOI => {
            let mut b = [0u8; 4];
            rd(d, &mut b)?;
            crate::events::eoi_pirq(d, u32::from_le_bytes(b)).map(|()| 0)
        }
        PHYSDEVOP_IRQ_STATUS_QUERY => {
            let mut b = [0u8; 8];
            rd(d, &mut b)?;
            let irq = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let flags = crate::events::pirq_status(d, irq)?;
            wr(d, 4, &flags.to_le_bytes())?;
            Ok(0)
        }
        // No shared EOI bitmap: guests fall back to PHYSDEVOP_eoi.
        PHYSDEVOP_PIRQ_EOI_GMFN_V1 | PHYSDEVOP_PIRQ_EOI_GMFN_V2 => Err(ENOSYS),
        _ => Err(ENOSYS),
    }
}

fn set_timer_op(d: &mut Domain, vi: usize, deadline: u64) -> Result<u64, Errno> {
    crate::events::set_timer(d, vi, deadline);
    Ok(0)
}

/// `SCHEDOP_remote_shutdown`: the control domain shuts another domain down.
fn remote_shutdown(t: &mut DomainTable, me: DomId, vi: usize, arg: u64) -> Result<u64, Errno> {
    let caller = t.get(me).ok_or(ESRCH)?;
    if !caller.privileged {
        return Err(EPERM);
    }
    let v = caller.vcpus.get(vi).ok_or(EINVAL)?;
    let mut b = [0u8; 8];
    crate::guest_mem::copy_from_guest(pv::current_l4(v), arg, &mut b).map_err(|_| EFAULT)?;
    let dom = u16::from_le_bytes([b[0], b[1]]);
    let reason = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if reason > xen_abi::sched::SHUTDOWN_MAX || dom == me {
        return Err(EINVAL);
    }
    let d = t.get(dom).ok_or(ESRCH)?;
    if d.shutdown.is_none() {
        log::info!(
            "d{dom}: shut down by d{me}, reason {reason} ({})",
            shutdown_name(reason)
        );
        d.shutdown = Some(Shutdown::Guest(reason));
        for v in d.vcpus.iter() {
            if let Some(cpu) = v.running_on {
                crate::sched::resched(cpu);
            }
        }
        if let Some(d0) = t.get(0) {
            crate::events::send_virq(d0, 0, xen_abi::xen::VIRQ_DOM_EXC);
        }
    }
    Ok(0)
}

/// `VCPUOP_initialise(vcpu, context)`: load the context of a vCPU of the caller's own
/// domain that was never initialised (it stays down until `VCPUOP_up`).
fn vcpu_initialise(
    t: &mut DomainTable,
    me: DomId,
    vi: usize,
    vcpu: u64,
    ctxt: u64,
) -> Result<u64, Errno> {
    let d = t.get(me).ok_or(ESRCH)?;
    let l4 = d.vcpus.get(vi).map(|v| pv::current_l4(v)).ok_or(EINVAL)?;
    let target = d.vcpus.get(vcpu as usize).ok_or(ENOENT)?;
    if target.initialised {
        return Err(EEXIST);
    }
    let was = target.state;
    crate::control::set_vcpu_context(t, me, vcpu as u32, ctxt, l4)?;
    // Initialising does not bring the vCPU up.
    if let Some(v) = t.get(me).and_then(|d| d.vcpus.get_mut(vcpu as usize)) {
        v.state = was;
    }
    Ok(0)
}

fn vcpu_op(d: &mut Domain, vi: usize, a: [u64; 5]) -> Result<u64, Errno> {
    use xen_abi::vcpu::*;
    let target = a[1] as usize;
    if target >= d.vcpus.len() {
        return Err(ENOENT);
    }
    match a[0] as u32 {
        VCPUOP_UP => {
            let v = d.vcpus.get_mut(target).ok_or(ENOENT)?;
            if !v.initialised {
                return Err(EINVAL);
            }
            if v.state == crate::domain::RunState::Down {
                v.state = crate::domain::RunState::Runnable;
                crate::sched::vcpu_online(d, target);
            }
            Ok(0)
        }
        VCPUOP_DOWN => {
            let v = d.vcpus.get_mut(target).ok_or(ENOENT)?;
            if v.state != crate::domain::RunState::Down {
                v.state = crate::domain::RunState::Down;
                // The policy stops choosing it and kicks the CPU it runs on.
                crate::sched::vcpu_offline(d, target);
            }
            Ok(0)
        }
        VCPUOP_IS_UP => Ok(u64::from(
            d.vcpus
                .get(target)
                .is_some_and(|v| v.state != crate::domain::RunState::Down),
        )),
        VCPUOP_SET_SINGLESHOT_TIMER => {
            if target != vi {
                return Err(EINVAL);
            }
            let v = vcpu(d, vi)?;
            let mut b = [0u8; 16];
            crate::guest_mem::copy_from_guest(pv::current_l4(v), a[2], &mut b)
                .map_err(|_| EFAULT)?;
            let t = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            let flags = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
            if flags & VCPU_SSHOTTMR_FUTURE != 0 && t < crate::events::now_ns() {
                return Err(ETIME);
            }
            crate::events::set_timer(d, vi, t);
            Ok(0)
        }
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            crate::events::set_timer(d, target, 0);
            Ok(0)
        }
        VCPUOP_STOP_PERIODIC_TIMER | VCPUOP_SET_PERIODIC_TIMER => Ok(0),
        _ => Err(ENOSYS),
    }
}

fn multicall(t: &mut DomainTable, dom: DomId, vi: usize, a: [u64; 5]) -> (Ret, After) {
    const BATCH: u64 = 64;
    let (list, nr) = (a[0], a[1]);
    let Some(l4) = t
        .get(dom)
        .and_then(|d| d.vcpus.get(vi))
        .map(|v| pv::current_l4(v))
    else {
        return (Ret::Err(EINVAL), After::Stopped);
    };
    for i in 0..nr.min(BATCH) {
        let ea = list.wrapping_add(i * 64);
        let mut b = [0u8; 64];
        if crate::guest_mem::copy_from_guest(l4, ea, &mut b).is_err() {
            return (Ret::Err(EFAULT), After::Resume);
        }
        let w = |j: usize| u64::from_le_bytes(b[j * 8..j * 8 + 8].try_into().unwrap_or([0; 8]));
        let (op, args) = (w(0), [w(2), w(3), w(4), w(5), w(6)]);
        let (ret, after) = dispatch(t, dom, vi, op, args, 1);
        if matches!(after, After::Iret) {
            // The iret's own result is not written back; the batch stops here.
            return (Ret::Value(0), After::Iret);
        }
        let result = match ret {
            Ret::Value(v) => v,
            Ret::Err(e) => e.to_ret(),
            // No continuations inside a multicall: the batch is small enough.
            Ret::Continue(_) | Ret::Restart => EINVAL.to_ret(),
        };
        if crate::guest_mem::copy_to_guest(l4, ea.wrapping_add(8), &result.to_le_bytes()).is_err() {
            return (Ret::Err(EFAULT), After::Resume);
        }
        // A call that changes how the vCPU runs ends the batch (XSA-213's lesson).
        if !matches!(after, After::Resume) {
            return (Ret::Value(0), after);
        }
    }
    if nr > BATCH {
        return (
            Ret::Continue([list.wrapping_add(BATCH * 64), nr - BATCH, 0, 0, 0]),
            After::Resume,
        );
    }
    (Ret::Value(0), After::Resume)
}
