//! Split PV drivers: the generic shared ring, frontends and backends.
//!
//! Everything here is pure protocol logic, host-tested, with no hypercalls and no
//! kernel glue: shared memory is reached through [`ring::SharedPage`], granted frames
//! through [`blkif::Grants`], the backing store through [`blkif::Disk`], and xenstore
//! values arrive as strings.
//!
//! - [`ring`]: Xen's generic shared ring (`io/ring.h`), hardened against a hostile peer.
//! - [`blkif`]: the block protocol (`io/blkif.h`): backend request validation and
//!   execution, frontend request building and completion, xenstore key parsing.
//! - [`netif`]: the network protocol (`io/netif.h`): backend tx validation and rx
//!   delivery, frontend tx requests and rx reassembly, xenstore key parsing.
//! - [`env`]: what a frontend needs from the kernel ([`env::FrontendEnv`]).
//! - [`blkfront`], [`netfront`]: a guest's virtual disk and network device over it.
//! - [`sdk`]: the one piece of kernel glue: the frontends' environment over `guest-sdk`,
//!   for PV guests (bare metal only; exercised by the example guests).
//! - [`tcpip`]: smoltcp over any Ethernet [`tcpip::Nic`], with static or DHCP addressing.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blkfront;
pub mod blkif;
pub mod env;
pub mod nb;
pub mod netfront;
pub mod netif;
pub mod ring;
#[cfg(target_os = "none")]
pub mod sdk;
pub mod tcpip;
