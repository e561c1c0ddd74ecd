//! Emulation of the few privileged operations a PV kernel may legitimately perform:
//! CPUID through Xen's forced-emulation prefix, port I/O when its virtual IOPL allows,
//! the FS/GS base MSRs, control registers and `cli`/`sti` (the event mask). Anything else (`hlt` too, as on Xen) is
//! bounced to the guest as #GP by the caller.

use crate::domain::{Domain, Vcpu};
use crate::guest_mem;
use crate::pv;
use crate::shinfo::SharedInfo;

/// `ud2; .ascii "xen"; cpuid`
pub const FORCED_CPUID: [u8; 7] = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2];

/// What an emulated instruction asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulated {
    /// Not an instruction we emulate: raise the original fault.
    No,
    Done,
}

fn fetch(v: &Vcpu, rip: u64, buf: &mut [u8]) -> bool {
    guest_mem::copy_from_guest(pv::current_l4(v), rip, buf).is_ok()
}

/// The CPUID a PV guest sees: the host's, minus what PV guests cannot use, plus Xen's
/// hypervisor leaves at 0x40000000.
pub fn cpuid_policy(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    match leaf {
        0x4000_0000 => (
            0x4000_0002,
            u32::from_le_bytes(*b"XenV"),
            u32::from_le_bytes(*b"MMXe"),
            u32::from_le_bytes(*b"nVMM"),
        ),
        0x4000_0001 => (
            ((crate::hypercall::XEN_MAJOR as u32) << 16) | crate::hypercall::XEN_MINOR as u32,
            0,
            0,
            0,
        ),
        0x4000_0002 => (1, 0x4000_0000, 0, 0),
        0x4000_0003..=0x4fff_ffff => (0, 0, 0, 0),
        _ => {
            let (a, b, c, d) = crate::arch::x86::cpuid(leaf, sub);
            match leaf {
                1 => {
                    // ecx: no VMX/SMX/MONITOR/XSAVE/OSXSAVE/AVX; the hypervisor bit set.
                    let c =
                        (c & !((1 << 3) | (1 << 5) | (1 << 6) | (1 << 26) | (1 << 27) | (1 << 28)))
                            | (1 << 31);
                    // edx: no VME, PSE, MTRR, PSE36, DS, ACPI.
                    let d =
                        d & !((1 << 1) | (1 << 3) | (1 << 12) | (1 << 17) | (1 << 21) | (1 << 22));
                    (a, b, c, d)
                }
                // Structured features: only plain integer extensions.
                7 => {
                    if sub == 0 {
                        (
                            0,
                            b & ((1 << 3) | (1 << 8) | (1 << 9) | (1 << 18) | (1 << 19)),
                            0,
                            0,
                        )
                    } else {
                        (0, 0, 0, 0)
                    }
                }
                0xd => (0, 0, 0, 0),
                0x8000_0001 => (a, b, c & !(1 << 2), d),
                _ => (a, b, c, d),
            }
        }
    }
}

/// #UD at the forced-emulation prefix: emulate CPUID and skip the 7 bytes.
pub fn forced_cpuid(d: &mut Domain, vi: usize, regs: &mut crate::arch::percpu::Regs) -> bool {
    let Some(v) = d.vcpus.get(vi) else {
        return false;
    };
    let mut b = [0u8; 7];
    if !fetch(v, regs.rip, &mut b) || b != FORCED_CPUID {
        return false;
    }
    let (a, bx, c, dx) = cpuid_policy(regs.rax as u32, regs.rcx as u32);
    regs.rax = u64::from(a);
    regs.rbx = u64::from(bx);
    regs.rcx = u64::from(c);
    regs.rdx = u64::from(dx);
    regs.rip = regs.rip.wrapping_add(7);
    true
}

/// Ports the hypervisor keeps for itself: PIC, PIT, COM1, QEMU's debug exit.
fn port_denied(port: u16, size: u16) -> bool {
    let end = port.saturating_add(size - 1);
    let overlaps = |a: u16, b: u16| port <= b && end >= a;
    overlaps(0x20, 0x21)
        || overlaps(0xa0, 0xa1)
        || overlaps(0x40, 0x43)
        || overlaps(0x3f8, 0x3ff)
        || overlaps(0xf4, 0xf7)
        || overlaps(0x61, 0x61)
}

fn iopl_ok(v: &Vcpu) -> bool {
    v.iopl >= if v.kernel_mode { 1 } else { 3 }
}

/// General register `n` (0 = rax ... 15 = r15) of a frame.
fn gpr(regs: &mut crate::arch::percpu::Regs, n: u8) -> &mut u64 {
    match n & 15 {
        0 => &mut regs.rax,
        1 => &mut regs.rcx,
        2 => &mut regs.rdx,
        3 => &mut regs.rbx,
        4 => &mut regs.rsp,
        5 => &mut regs.rbp,
        6 => &mut regs.rsi,
        7 => &mut regs.rdi,
        8 => &mut regs.r8,
        9 => &mut regs.r9,
        10 => &mut regs.r10,
        11 => &mut regs.r11,
        12 => &mut regs.r12,
        13 => &mut regs.r13,
        14 => &mut regs.r14,
        _ => &mut regs.r15,
    }
}

/// The CR0 a PV guest sees: the host's, with TS from its `fpu_taskswitch` state.
pub(crate) fn guest_cr0(v: &crate::domain::Vcpu) -> u64 {
    let cr0: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack)) };
    (cr0 & !(1 << 3)) | if v.fpu_ts { 1 << 3 } else { 0 }
}

/// The CR4 a PV guest sees: the host's paging and SSE bits, nothing it could misuse.
pub(crate) fn guest_cr4() -> u64 {
    let cr4: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack)) };
    cr4 & ((1 << 5) | (1 << 7) | (1 << 9) | (1 << 10))
}

/// `mov cr, reg` / `mov reg, cr` in guest kernel mode (Xen's emulation of CR accesses):
/// CR0 (TS is the guest's `fpu_taskswitch` state), CR2 (the last fault address), CR3
/// (the kernel base pointer; a write is `MMUEXT_NEW_BASEPTR`), CR4 (read-only view).
fn mov_cr(
    d: &mut Domain,
    vi: usize,
    regs: &mut crate::arch::percpu::Regs,
    to_cr: bool,
    modrm: u8,
    rex: u8,
) -> Emulated {
    if modrm >> 6 != 3 {
        return Emulated::No;
    }
    let cr = ((modrm >> 3) & 7) | ((rex & 4) << 1);
    let reg = (modrm & 7) | ((rex & 1) << 3);
    let Some(v) = d.vcpus.get(vi) else {
        return Emulated::No;
    };
    if !to_cr {
        let val = match cr {
            0 => guest_cr0(v),
            2 => crate::arch::x86::cr2(),
            3 => v.kernel_l4() << 12,
            4 => guest_cr4(),
            _ => return Emulated::No,
        };
        *gpr(regs, reg) = val;
        return Emulated::Done;
    }
    let val = *gpr(regs, reg);
    match cr {
        0 => {
            let Some(v) = d.vcpus.get_mut(vi) else {
                return Emulated::No;
            };
            v.fpu_ts = val & (1 << 3) != 0;
            if v.fpu_ts {
                crate::arch::x86::stts();
            } else {
                crate::arch::x86::clts();
            }
            Emulated::Done
        }
        3 => {
            let op = xen_abi::mm::MmuextOp {
                cmd: xen_abi::mm::MMUEXT_NEW_BASEPTR,
                _pad: 0,
                arg1: val >> 12,
                arg2: 0,
            };
            let id = d.id;
            let Some(v) = d.vcpus.get_mut(vi) else {
                return Emulated::No;
            };
            let r = crate::mm::with_mmu(|mmu| {
                mmu.mmuext_op(
                    &mut crate::mm::HvMem,
                    hv_core::mm::MmuCtx::local(id),
                    &mut v.mm,
                    &op,
                )
            });
            match r {
                Some(Ok(f)) => {
                    pv::load_mode(v);
                    crate::mm::perform(f);
                    Emulated::Done
                }
                _ => Emulated::No,
            }
        }
        4 if val == guest_cr4() => Emulated::Done,
        _ => Emulated::No,
    }
}

/// #GP(0) from the guest: emulate what is allowed.
pub fn privileged_op(d: &mut Domain, vi: usize, regs: &mut crate::arch::percpu::Regs) -> Emulated {
    let Some(v) = d.vcpus.get(vi) else {
        return Emulated::No;
    };
    let mut b = [0u8; 6];
    if !fetch(v, regs.rip, &mut b) {
        return Emulated::No;
    }
    // Prefixes: operand size (0x66), then at most one REX.
    let mut i = 0usize;
    let opsize16 = b[0] == 0x66;
    if opsize16 {
        i += 1;
    }
    let rex = if (0x40..=0x4f).contains(&b[i]) {
        i += 1;
        b[i - 1]
    } else {
        0
    };
    let (op, rest) = (b[i], &b[i + 1..]);
    let prefix = i as u64;
    if op == 0x0f && (rest[0] == 0x21 || rest[0] == 0x23) && v.kernel_mode {
        // mov %dbN, reg / mov reg, %dbN (register form only).
        let modrm = rest[1];
        if modrm >> 6 != 3 {
            return Emulated::No;
        }
        let dr = u64::from((modrm >> 3) & 7 | ((rex & 4) << 1));
        let gr = (modrm & 7) | ((rex & 1) << 3);
        let Some(v) = d.vcpus.get_mut(vi) else {
            return Emulated::No;
        };
        if rest[0] == 0x21 {
            match crate::debugreg::get(v, dr) {
                Ok(val) => *gpr(regs, gr) = val,
                Err(_) => return Emulated::No,
            }
        } else if crate::debugreg::set(v, dr, *gpr(regs, gr)).is_err() {
            return Emulated::No;
        }
        regs.rip = regs.rip.wrapping_add(prefix + 3);
        return Emulated::Done;
    }
    if op == 0x0f && (rest[0] == 0x20 || rest[0] == 0x22) && v.kernel_mode {
        let r = mov_cr(d, vi, regs, rest[0] == 0x22, rest[1], rex);
        if r == Emulated::Done {
            regs.rip = regs.rip.wrapping_add(prefix + 3);
        }
        return r;
    }

    match op {
        // in/out with an immediate port or dx.
        0xe4..=0xe7 | 0xec..=0xef => {
            let (port, len) = if op <= 0xe7 {
                (u16::from(rest[0]), 2)
            } else {
                (regs.rdx as u16, 1)
            };
            let size: u16 = if op & 1 == 0 {
                1
            } else if opsize16 {
                2
            } else {
                4
            };
            // As Xen's `guest_io_okay`: the virtual IOPL alone is not enough, the domain
            // must hold the ports too. Only the control domain (Xen's hardware domain)
            // does; a domU that raised its IOPL still gets #GP.
            if !iopl_ok(v) || !d.privileged || port_denied(port, size) {
                return Emulated::No;
            }
            let is_in = matches!(op, 0xe4 | 0xe5 | 0xec | 0xed);
            // SAFETY: the port is not one the hypervisor uses (checked above) and the
            // guest holds I/O privilege for it; port I/O cannot touch hypervisor memory
            // except through DMA, which only a privileged domain's devices can do.
            unsafe {
                use x86_64::instructions::port::Port;
                match (is_in, size) {
                    (true, 1) => {
                        regs.rax = (regs.rax & !0xff) | u64::from(Port::<u8>::new(port).read())
                    }
                    (true, 2) => {
                        regs.rax = (regs.rax & !0xffff) | u64::from(Port::<u16>::new(port).read())
                    }
                    (true, _) => regs.rax = u64::from(Port::<u32>::new(port).read()),
                    (false, 1) => Port::<u8>::new(port).write(regs.rax as u8),
                    (false, 2) => Port::<u16>::new(port).write(regs.rax as u16),
                    (false, _) => Port::<u32>::new(port).write(regs.rax as u32),
                }
            }
            regs.rip = regs.rip.wrapping_add(prefix + len);
            Emulated::Done
        }
        // cli / sti: the event mask, when the guest has I/O privilege.
        0xfa | 0xfb if !opsize16 => {
            if !iopl_ok(v) {
                return Emulated::No;
            }
            SharedInfo::new(d.shared_info_mfn).set_upcall_mask(v.id, op == 0xfa);
            regs.rip = regs.rip.wrapping_add(1);
            Emulated::Done
        }

        0x0f if v.kernel_mode => match rest[0] {
            // wbinvd / invd: no effect needed.
            0x08 | 0x09 => {
                regs.rip = regs.rip.wrapping_add(prefix + 2);
                Emulated::Done
            }
            0x32 => {
                let val = match regs.rcx as u32 {
                    0xC000_0100 => v.fs_base,
                    0xC000_0101 => v.gs_base_kernel,
                    0xC000_0102 => v.gs_base_user,
                    _ => return Emulated::No,
                };
                regs.rax = val & 0xffff_ffff;
                regs.rdx = val >> 32;
                regs.rip = regs.rip.wrapping_add(prefix + 2);
                Emulated::Done
            }
            0x30 => {
                let val = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
                let top = val >> 47;
                if top != 0 && top != 0x1ffff {
                    return Emulated::No;
                }
                let Some(v) = d.vcpus.get_mut(vi) else {
                    return Emulated::No;
                };
                match regs.rcx as u32 {
                    0xC000_0100 => v.fs_base = val,
                    0xC000_0101 => v.gs_base_kernel = val,
                    0xC000_0102 => v.gs_base_user = val,
                    _ => return Emulated::No,
                }
                pv::load_mode(v);
                regs.rip = regs.rip.wrapping_add(prefix + 2);
                Emulated::Done
            }
            _ => Emulated::No,
        },
        _ => Emulated::No,
    }
}
