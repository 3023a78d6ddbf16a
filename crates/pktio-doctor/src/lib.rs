//! # pktio-doctor: read a host's network tuning
//!
//! The engine behind `pktio doctor`.
#![forbid(unsafe_code)]
