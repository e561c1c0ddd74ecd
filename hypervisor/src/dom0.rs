//! Building dom0 from the first boot module, the way Xen's `dom0_construct_pv` does.
use crate::arch::power;
use crate::{cmdline, multiboot};

pub fn build(_bi: &multiboot::BootInfo, _opts: &cmdline::Options) -> ! {
    log::error!("dom0 construction not implemented yet");
    power::off(power::Reason::HypervisorFailure)
}
