//! Domains and their construction.
use crate::arch::power;
use crate::{cmdline, multiboot};

pub fn build_dom0(_bi: &multiboot::BootInfo, _opts: &cmdline::Options) -> ! {
    log::error!("dom0 construction not implemented yet");
    power::off(power::Reason::HypervisorFailure)
}
