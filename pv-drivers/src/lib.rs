//! Split PV drivers: the generic shared ring, frontends and backends.
//!
//! Nothing here yet: the rings arrive with the block and network issues.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
