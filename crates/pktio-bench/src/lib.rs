//! # pktio-bench: the engines behind pktio's benchmarks
#![forbid(unsafe_code)]

pub mod tcp;
