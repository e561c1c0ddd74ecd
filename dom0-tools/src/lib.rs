//! The control domain's toolstack: domain builder, `xl.cfg` parser, `xl` shell.
//!
//! The pure, host-tested parts so far:
//! - [`cfg`]: the `xl.cfg` parser (libxlu's syntax and messages) and the typed
//!   [`cfg::DomainConfig`] with xl's defaults;
//! - [`xl`]: `xl` command lines, parsed as Xen 4.17's `xl` does;
//! - [`fmt`]: `xl list`/`info`/`vcpu-list`/`sched-credit`/`uptime` output, byte for byte;
//! - [`shell`]: the console line editor and console-attach switch;
//! - [`archive`]: the dom0 ramdisk (cpio newc); [`elf`]: PV kernel images and their Xen
//!   notes; [`builder`]: the start-of-day layout of a new domain; [`conring`]: the console
//!   ring's index arithmetic; [`xenstore`]: xenstored's store, permissions, watches,
//!   transactions, quotas and domain connections, driven by XenStore wire messages.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod archive;
/// Software Ethernet bridge: MAC learning, forwarding, per-port queues (`xenbr0`).
pub mod bridge;
pub mod builder;
pub mod cfg;
pub mod conring;
/// `disk = [...]` entries of `xl.cfg` and Xen's virtual-device numbers.
pub mod diskspec;
pub mod elf;
pub mod fmt;
/// PCI configuration space (mechanism #1): enumeration, BAR sizing, capabilities.
pub mod pci;
pub mod shell;
/// `vif = [...]` entries of `xl.cfg`: MACs, bridges, static addresses.
pub mod vifspec;
/// Legacy virtio-pci devices: split virtqueue, transport, virtio-blk driver.
pub mod virtio;
pub mod xenstore;
pub mod xl;
