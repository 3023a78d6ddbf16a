//! Capture files are user input (`pktio capture -r FILE`): the pcap and
//! pcapng reader over arbitrary bytes either reads records or says what is
//! wrong with the file — never panics, never loops — and every record it
//! returns is summarised (`pktio capture -r` prints one line each) without
//! panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktio::filter::Dissected;
use pktio::pcap::{summary, PcapReader};

fuzz_target!(|data: &[u8]| {
    let mut r = match PcapReader::new(data) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (r.format(), r.snaplen(), r.linktype());
    // Each record consumes at least its header: the input bounds the count.
    for _ in 0..=data.len() / 8 {
        match r.next_record() {
            Ok(Some(rec)) => {
                assert!(
                    rec.data.len() <= data.len(),
                    "a record larger than the file"
                );
                let d = Dissected::new(&rec.data, rec.orig_len as usize);
                let _ = summary(&d);
            }
            Ok(None) => return,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
    panic!("the reader returned more records than the input can hold");
});
