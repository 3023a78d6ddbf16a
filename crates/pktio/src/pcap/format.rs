//! The two file formats, as bytes: pcap with nanosecond timestamps and
//! pcapng. Pure code; [`super::PcapWriter`] does the writing.
//!
//! References: the pcap format (draft-ietf-opsawg-pcap), pcapng
//! (draft-ietf-opsawg-pcapng): section header, interface description,
//! enhanced packet and interface statistics blocks.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// pcap magic for microsecond timestamps (as written in host order).
pub const PCAP_MAGIC_USEC: u32 = 0xa1b2_c3d4;
/// pcap magic for nanosecond timestamps.
pub const PCAP_MAGIC_NSEC: u32 = 0xa1b2_3c4d;
/// pcapng section header block type.
pub const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic.
pub const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
/// pcapng interface description block.
pub const PCAPNG_IDB: u32 = 1;
/// pcapng simple packet block.
pub const PCAPNG_SPB: u32 = 3;
/// pcapng interface statistics block.
pub const PCAPNG_ISB: u32 = 5;
/// pcapng enhanced packet block.
pub const PCAPNG_EPB: u32 = 6;

/// Bytes of a pcap file header.
pub const PCAP_FILE_HEADER_LEN: usize = 24;
/// Bytes of a pcap record header.
pub const PCAP_RECORD_HEADER_LEN: usize = 16;
/// Bytes of an enhanced packet block around the data (header and trailer).
pub const PCAPNG_EPB_OVERHEAD: usize = 32;

/// Which file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FileFormat {
    /// Classic pcap, nanosecond timestamps (magic `0xa1b23c4d`).
    #[default]
    Pcap,
    /// pcapng: one section, one Ethernet interface, enhanced packet blocks
    /// with nanosecond timestamps (`if_tsresol` 9), interface statistics at
    /// the end.
    PcapNg,
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Pcap => "pcap",
            FileFormat::PcapNg => "pcapng",
        })
    }
}

/// A point in time, nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds, `< 1_000_000_000`.
    pub nsec: u32,
}

impl Timestamp {
    /// The wall clock now (`clock_gettime(CLOCK_REALTIME)`); the epoch if
    /// the clock is before it.
    pub fn now() -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            sec: d.as_secs(),
            nsec: d.subsec_nanos(),
        }
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(&self) -> u128 {
        u128::from(self.sec) * 1_000_000_000 + u128::from(self.nsec)
    }

    /// From nanoseconds since the epoch.
    pub fn from_nanos(ns: u128) -> Timestamp {
        Timestamp {
            sec: (ns / 1_000_000_000) as u64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

impl fmt::Display for Timestamp {
    /// `2025-01-31T12:34:56.123456789Z` (UTC).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.sec / 86_400) as i64;
        let rem = self.sec % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            self.nsec
        )
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_ne_bytes());
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// One pcapng option: code, length, value padded to 32 bits.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    put_u16(out, code);
    put_u16(out, value.len() as u16);
    out.extend_from_slice(value);
    pad4(out);
}

/// Appends a pcapng block: type, total length, `body`, total length.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let total = (12 + body.len()) as u32;
    put_u32(out, kind);
    put_u32(out, total);
    out.extend_from_slice(body);
    put_u32(out, total);
}

/// What goes at the start of a file (one "record" for the writer: written
/// whole or not at all).
pub fn file_header(format: FileFormat, snaplen: u32, ifname: Option<&str>) -> Vec<u8> {
    file_header_for(format, snaplen, ifname, LINKTYPE_ETHERNET)
}

/// [`file_header`] for a link type other than Ethernet (a file read with
/// `-r` and written again keeps its link type).
pub fn file_header_for(
    format: FileFormat,
    snaplen: u32,
    ifname: Option<&str>,
    linktype: u16,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    match format {
        FileFormat::Pcap => {
            put_u32(&mut out, PCAP_MAGIC_NSEC);
            put_u16(&mut out, 2);
            put_u16(&mut out, 4);
            put_u32(&mut out, 0); // thiszone
            put_u32(&mut out, 0); // sigfigs
            put_u32(&mut out, snaplen);
            put_u32(&mut out, u32::from(linktype));
        }
        FileFormat::PcapNg => {
            let mut shb = Vec::new();
            put_u32(&mut shb, PCAPNG_BOM);
            put_u16(&mut shb, 1);
            put_u16(&mut shb, 0);
            put_u64(&mut shb, u64::MAX); // section length: unknown
            option(&mut shb, 4, b"pktio"); // shb_userappl
            option(&mut shb, 0, &[]);
            block(&mut out, PCAPNG_SHB, &shb);
            let mut idb = Vec::new();
            put_u16(&mut idb, linktype);
            put_u16(&mut idb, 0);
            put_u32(&mut idb, snaplen);
            if let Some(name) = ifname {
                option(&mut idb, 2, name.as_bytes()); // if_name
            }
            option(&mut idb, 9, &[9]); // if_tsresol: 10^-9 s
            option(&mut idb, 0, &[]);
            block(&mut out, PCAPNG_IDB, &idb);
        }
    }
    out
}

/// Bytes a record of `caplen` captured bytes takes in the file.
pub fn record_len(format: FileFormat, caplen: usize) -> usize {
    match format {
        FileFormat::Pcap => PCAP_RECORD_HEADER_LEN + caplen,
        FileFormat::PcapNg => PCAPNG_EPB_OVERHEAD + caplen.div_ceil(4) * 4,
    }
}

/// Appends one packet record (`data` already cut to the snap length).
pub fn record(format: FileFormat, out: &mut Vec<u8>, ts: Timestamp, data: &[u8], orig_len: u32) {
    match format {
        FileFormat::Pcap => {
            put_u32(out, ts.sec as u32);
            put_u32(out, ts.nsec);
            put_u32(out, data.len() as u32);
            put_u32(out, orig_len);
            out.extend_from_slice(data);
        }
        FileFormat::PcapNg => {
            let ns = ts.as_nanos() as u64;
            let total = record_len(format, data.len()) as u32;
            put_u32(out, PCAPNG_EPB);
            put_u32(out, total);
            put_u32(out, 0); // interface id
            put_u32(out, (ns >> 32) as u32);
            put_u32(out, ns as u32);
            put_u32(out, data.len() as u32);
            put_u32(out, orig_len);
            out.extend_from_slice(data);
            pad4(out);
            put_u32(out, total);
        }
    }
}

/// Counters for a pcapng interface statistics block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// When capturing started.
    pub start: Timestamp,
    /// When it ended.
    pub end: Timestamp,
    /// Packets the interface received (`isb_ifrecv`), if known.
    pub if_received: Option<u64>,
    /// Packets the interface dropped (`isb_ifdrop`), if known.
    pub if_dropped: Option<u64>,
    /// Packets the filter accepted (`isb_filteraccept`).
    pub filter_accepted: Option<u64>,
    /// Packets the capture socket dropped (`isb_osdrop`).
    pub os_dropped: Option<u64>,
    /// Packets written (`isb_usrdeliv`).
    pub delivered: Option<u64>,
}

/// A pcapng interface statistics block (appended at the end of a file).
pub fn interface_statistics(out: &mut Vec<u8>, s: &InterfaceStats) {
    let ts = |t: Timestamp| {
        let ns = t.as_nanos() as u64;
        let mut v = Vec::with_capacity(8);
        put_u32(&mut v, (ns >> 32) as u32);
        put_u32(&mut v, ns as u32);
        v
    };
    let mut body = Vec::new();
    put_u32(&mut body, 0);
    body.extend_from_slice(&ts(s.end));
    option(&mut body, 2, &ts(s.start)); // isb_starttime
    option(&mut body, 3, &ts(s.end)); // isb_endtime
    for (code, v) in [
        (4u16, s.if_received),
        (5, s.if_dropped),
        (6, s.filter_accepted),
        (7, s.os_dropped),
        (8, s.delivered),
    ] {
        if let Some(v) = v {
            option(&mut body, code, &v.to_ne_bytes());
        }
    }
    option(&mut body, 0, &[]);
    block(out, PCAPNG_ISB, &body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = Timestamp { sec: 0, nsec: 5 };
        assert_eq!(t.to_string(), "1970-01-01T00:00:00.000000005Z");
        let t = Timestamp {
            sec: 1_709_210_096, // 2024-02-29T12:34:56Z
            nsec: 123_456_789,
        };
        assert_eq!(t.to_string(), "2024-02-29T12:34:56.123456789Z");
        assert_eq!(Timestamp::from_nanos(t.as_nanos()), t);
    }

    #[test]
    fn record_lengths_match_what_is_written() {
        for format in [FileFormat::Pcap, FileFormat::PcapNg] {
            for n in [0usize, 1, 3, 4, 5, 60, 1514] {
                let mut out = Vec::new();
                record(format, &mut out, Timestamp::now(), &vec![7; n], 9000);
                assert_eq!(out.len(), record_len(format, n), "{format} {n}");
                assert_eq!(
                    out.len() % 4,
                    if format == FileFormat::PcapNg {
                        0
                    } else {
                        out.len() % 4
                    }
                );
            }
        }
        let h = file_header(FileFormat::PcapNg, 262_144, Some("vrx"));
        assert_eq!(h.len() % 4, 0);
        assert_eq!(&h[0..4], &PCAPNG_SHB.to_ne_bytes());
        assert_eq!(
            file_header(FileFormat::Pcap, 65535, None).len(),
            PCAP_FILE_HEADER_LEN
        );
    }
}
