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
//! - [`tcpip`]: smoltcp over any Ethernet [`tcpip::Nic`], with static or DHCP addressing.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blkfront;
pub mod blkif;
pub mod ring;
pub mod tcpip;
