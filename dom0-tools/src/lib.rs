//! The control domain's toolstack: domain builder, `xl.cfg` parser, `xl` shell.
//!
//! Nothing here yet: it arrives with the multi-domain issue.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
