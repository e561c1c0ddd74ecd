//! Bringing up more vCPUs: `VCPUOP_initialise` with a context built from the boot vCPU's
//! (same page tables, trap table and callbacks), then `VCPUOP_up`.
//!
//! A secondary vCPU starts in the function given to [`start_vcpu`], on its own stack, with
//! event delivery masked (`evtchn_upcall_mask = 1` in its `vcpu_info`). The SDK's upcall
//! dispatcher serves vCPU 0 only, so a secondary vCPU waits for events with
//! [`crate::sched::poll`] on ports bound to it ([`crate::events::bind_virq`] with its id,
//! [`crate::events::bind_vcpu`]) rather than with handlers.

use xen_abi::errno::{Errno, EINVAL, ENOENT};
use xen_abi::mm::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};
use xen_abi::xen::{xen_pfn_to_cr3, TrapInfo, VcpuGuestContext, VGCF_I387_VALID, VGCF_IN_KERNEL};

/// What a secondary vCPU runs: called with its vCPU id; it must not return.
pub type VcpuEntry = extern "C" fn(u32) -> !;

/// The pieces of the boot vCPU's state a secondary vCPU shares.
#[derive(Clone, Copy, Debug)]
pub struct SharedState {
    /// Machine frame of the kernel L4 (what CR3 holds).
    pub l4_mfn: u64,
    /// Event and failsafe callback addresses.
    pub event_callback: u64,
    pub failsafe_callback: u64,
}

/// The `vcpu_guest_context` for a secondary vCPU: kernel mode at `entry(vcpu)` with
/// `rsp` just below `stack_top` (16-byte aligned as after a `call`), the given trap
/// table, flat kernel selectors, no GDT or LDT of its own, the x87/SSE state at its
/// reset values (MXCSR masks all exceptions).
pub fn secondary_context(
    vcpu: u32,
    entry: u64,
    stack_top: u64,
    traps: &[TrapInfo],
    s: &SharedState,
) -> VcpuGuestContext {
    // SAFETY-free zero: VcpuGuestContext is plain integers.
    let mut c = VcpuGuestContext::ZERO;
    c.flags = VGCF_IN_KERNEL | VGCF_I387_VALID;
    // FXSAVE image: FCW 0x37f at offset 0, MXCSR 0x1f80 at offset 24.
    c.fpu_ctxt[0..2].copy_from_slice(&0x037f_u16.to_le_bytes());
    c.fpu_ctxt[24..28].copy_from_slice(&0x1f80_u32.to_le_bytes());
    c.user_regs.rip = entry;
    c.user_regs.rsp = (stack_top & !15) - 8;
    c.user_regs.rdi = u64::from(vcpu);
    c.user_regs.cs = FLAT_KERNEL_CS;
    c.user_regs.ss = FLAT_KERNEL_SS;
    c.user_regs.rflags = 0x200;
    for t in traps.iter().take_while(|t| t.address != 0) {
        if let Some(slot) = c.trap_ctxt.get_mut(t.vector as usize) {
            *slot = *t;
        }
    }
    c.kernel_ss = u64::from(FLAT_KERNEL_SS);
    c.kernel_sp = c.user_regs.rsp;
    c.ctrlreg[3] = xen_pfn_to_cr3(s.l4_mfn);
    c.event_callback_eip = s.event_callback;
    c.failsafe_callback_eip = s.failsafe_callback;
    c
}

/// How many vCPUs the domain has (`max_vcpus`): the first id `VCPUOP_is_up` refuses
/// with `-ENOENT`.
pub fn vcpu_count() -> u32 {
    let mut n = 1;
    while n < 512 {
        match is_up(n) {
            Err(e) if e == ENOENT => break,
            _ => n += 1,
        }
    }
    n
}

/// `VCPUOP_is_up`.
pub fn is_up(vcpu: u32) -> Result<bool, Errno> {
    // SAFETY: VCPUOP_is_up takes no argument.
    unsafe { crate::hypercall::vcpu_op(xen_abi::vcpu::VCPUOP_IS_UP, vcpu, core::ptr::null_mut()) }
        .map(|r| r != 0)
}

/// Start vCPU `vcpu` (≥ 1, never initialised) running `entry(vcpu)` on the stack that
/// ends at `stack_top`, which must stay reserved for it for good (a leaked allocation or
/// a static).
pub fn start_vcpu(vcpu: u32, entry: VcpuEntry, stack_top: u64) -> Result<(), Errno> {
    if vcpu == 0 || stack_top == 0 {
        return Err(EINVAL);
    }
    let (event_callback, failsafe_callback) = crate::events::callback_addresses();
    let shared = SharedState {
        l4_mfn: read_cr3() >> 12,
        event_callback,
        failsafe_callback,
    };
    let traps = crate::traps::table();
    let mut ctxt = secondary_context(vcpu, entry as usize as u64, stack_top, &traps, &shared);
    // Events stay masked on the new vCPU until it unmasks them itself.
    if let Some(m) = crate::shared::upcall_mask(vcpu as usize) {
        m.store(1, core::sync::atomic::Ordering::SeqCst);
    }
    // SAFETY: `ctxt` is a live vcpu_guest_context, read by the hypervisor during the call.
    unsafe {
        crate::hypercall::vcpu_op(
            xen_abi::vcpu::VCPUOP_INITIALISE,
            vcpu,
            &mut ctxt as *mut VcpuGuestContext as *mut u8,
        )
    }?;
    // SAFETY: VCPUOP_up takes no argument.
    unsafe { crate::hypercall::vcpu_op(xen_abi::vcpu::VCPUOP_UP, vcpu, core::ptr::null_mut()) }
        .map(|_| ())
}

/// CR3 as the hypervisor shows it to a PV kernel (`xen_pfn_to_cr3` of the L4's frame):
/// the read is a privileged instruction the hypervisor emulates.
#[cfg(target_os = "none")]
fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effect; in a PV guest it traps and is emulated.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack)) };
    v
}

#[cfg(not(target_os = "none"))]
fn read_cr3() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_context_starts_in_kernel_mode_at_entry() {
        let traps = [
            TrapInfo {
                vector: 14,
                flags: 4,
                cs: FLAT_KERNEL_CS,
                _pad: 0,
                address: 0xffff_ffff_8000_1000,
            },
            TrapInfo::default(),
            TrapInfo {
                vector: 3,
                flags: 0,
                cs: FLAT_KERNEL_CS,
                _pad: 0,
                address: 0xdead,
            },
        ];
        let s = SharedState {
            l4_mfn: 0x1234,
            event_callback: 0xffff_ffff_8000_2000,
            failsafe_callback: 0xffff_ffff_8000_3000,
        };
        let c = secondary_context(3, 0xffff_ffff_8000_4000, 0xffff_ffff_8100_0000, &traps, &s);
        assert_eq!(c.user_regs.rip, 0xffff_ffff_8000_4000);
        assert_eq!(c.user_regs.rdi, 3);
        assert_eq!((c.user_regs.rsp + 8) % 16, 0, "aligned as after a call");
        assert!(c.user_regs.rsp < 0xffff_ffff_8100_0000);
        assert_eq!(c.ctrlreg[3], 0x1234 << 12);
        assert_eq!(c.flags & VGCF_IN_KERNEL, VGCF_IN_KERNEL);
        assert_eq!(c.trap_ctxt[14].address, 0xffff_ffff_8000_1000);
        assert_eq!(
            c.trap_ctxt[3].address, 0,
            "the table ends at the first zero entry"
        );
        assert_eq!(&c.fpu_ctxt[24..28], &0x1f80_u32.to_le_bytes());
        assert_eq!(c.event_callback_eip, s.event_callback);
    }
}
