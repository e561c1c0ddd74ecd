//! Split-driver I/O protocols (`xen/io/*.h`): the generic shared ring, the block
//! interface and the network interface.
//!
//! These are layouts and constants only. The ring *logic* (private indices, the
//! event-index notification rule, checks against a hostile peer) lives in `pv-drivers`.

pub mod blkif;
pub mod netif;
pub mod protocols;
pub mod ring;
