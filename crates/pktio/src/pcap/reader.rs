//! Reading capture files back: pcap (microsecond or nanosecond, either
//! byte order) and pcapng (any byte order; interface description,
//! enhanced and simple packet blocks; other blocks are skipped).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::format::{
    FileFormat, Timestamp, PCAPNG_BOM, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_SHB, PCAPNG_SPB,
    PCAP_MAGIC_NSEC, PCAP_MAGIC_USEC,
};
use super::PcapError;

/// Records or blocks larger than this are taken as corruption.
const MAX_RECORD: u32 = 64 << 20;

/// One packet read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When it was captured.
    pub ts: Timestamp,
    /// Its length on the wire.
    pub orig_len: u32,
    /// The captured bytes (at most the snap length).
    pub data: Vec<u8>,
    /// The link type of its interface (1 = Ethernet).
    pub linktype: u16,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u16,
    snaplen: u32,
    /// Timestamp units per second.
    units: u64,
}

/// Reads a capture file packet by packet.
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    r: R,
    format: FileFormat,
    swapped: bool,
    nanos: bool,
    linktype: u16,
    snaplen: u32,
    interfaces: Vec<Interface>,
    offset: u64,
}

impl PcapReader<BufReader<File>> {
    /// Opens a file.
    ///
    /// # Errors
    /// [`PcapError::Open`] when it cannot be opened, [`PcapError::Format`]
    /// when it is not a pcap or pcapng file.
    pub fn open(path: &Path) -> Result<Self, PcapError> {
        let f = File::open(path).map_err(|source| PcapError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        PcapReader::new(BufReader::with_capacity(1 << 20, f))
    }
}

impl<R: Read> PcapReader<R> {
    /// Reads the file header from `r`.
    ///
    /// # Errors
    /// [`PcapError::Format`] when the data is not a capture file,
    /// [`PcapError::Read`] on an I/O error.
    pub fn new(mut r: R) -> Result<Self, PcapError> {
        let mut magic = [0u8; 4];
        match read_full(&mut r, &mut magic) {
            Ok(4) => {}
            Ok(_) => {
                return Err(PcapError::Format {
                    offset: 0,
                    what: "the file is empty or shorter than a file header".into(),
                })
            }
            Err(source) => return Err(PcapError::Read { source }),
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        let mut rd = PcapReader {
            r,
            format: FileFormat::Pcap,
            swapped: false,
            nanos: false,
            linktype: 1,
            snaplen: 0,
            interfaces: Vec::new(),
            offset: 4,
        };
        let native = u32::from_ne_bytes(magic);
        if native == PCAPNG_SHB || native.swap_bytes() == PCAPNG_SHB {
            rd.format = FileFormat::PcapNg;
            rd.section_header()?;
            return Ok(rd);
        }
        let (swapped, nanos) = match native {
            PCAP_MAGIC_USEC => (false, false),
            PCAP_MAGIC_NSEC => (false, true),
            m if m.swap_bytes() == PCAP_MAGIC_USEC => (true, false),
            m if m.swap_bytes() == PCAP_MAGIC_NSEC => (true, true),
            _ => {
                return Err(PcapError::Format {
                    offset: 0,
                    what: format!("magic number 0x{le:08x}/0x{be:08x} is neither pcap nor pcapng"),
                })
            }
        };
        rd.swapped = swapped;
        rd.nanos = nanos;
        let mut rest = [0u8; 20];
        rd.exact(&mut rest, "file header")?;
        rd.snaplen = rd.u32(&rest[12..16]);
        rd.linktype = rd.u32(&rest[16..20]) as u16;
        Ok(rd)
    }

    /// pcap or pcapng.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// The snap length in the file header (first interface for pcapng).
    pub fn snaplen(&self) -> u32 {
        self.interfaces.first().map_or(self.snaplen, |i| i.snaplen)
    }

    /// The link type (first interface for pcapng).
    pub fn linktype(&self) -> u16 {
        self.interfaces
            .first()
            .map_or(self.linktype, |i| i.linktype)
    }

    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.swapped {
            u32::from_ne_bytes(a).swap_bytes()
        } else {
            u32::from_ne_bytes(a)
        }
    }

    fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.swapped {
            u16::from_ne_bytes(a).swap_bytes()
        } else {
            u16::from_ne_bytes(a)
        }
    }

    /// Reads exactly `buf.len()` bytes; a short read is a truncated file.
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), PcapError> {
        let at = self.offset;
        let n = read_full(&mut self.r, buf).map_err(|source| PcapError::Read { source })?;
        self.offset += n as u64;
        if n < buf.len() {
            return Err(PcapError::Truncated {
                offset: at,
                what: what.to_string(),
            });
        }
        Ok(())
    }

    /// Reads a block's rest after its type (already read): returns the body.
    fn block_body(&mut self, kind: u32) -> Result<Vec<u8>, PcapError> {
        let at = self.offset - 4;
        let mut len = [0u8; 4];
        self.exact(&mut len, "block header")?;
        let total = self.u32(&len);
        if total < 12 || total % 4 != 0 || total > MAX_RECORD {
            return Err(PcapError::Format {
                offset: at,
                what: format!("block of type {kind} has a bad length {total}"),
            });
        }
        let mut body = vec![0u8; total as usize - 8];
        self.exact(&mut body, "block")?;
        let trailer = self.u32(&body[body.len() - 4..]);
        if trailer != total {
            return Err(PcapError::Format {
                offset: at,
                what: format!("block lengths disagree ({total} and {trailer})"),
            });
        }
        body.truncate(body.len() - 4);
        Ok(body)
    }

    fn section_header(&mut self) -> Result<(), PcapError> {
        // Byte order first: the length's order depends on it.
        let at = self.offset - 4;
        let mut head = [0u8; 8];
        self.exact(&mut head, "section header")?;
        let bom = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
        self.swapped = match bom {
            PCAPNG_BOM => false,
            b if b.swap_bytes() == PCAPNG_BOM => true,
            _ => {
                return Err(PcapError::Format {
                    offset: at,
                    what: "pcapng section header with a bad byte-order magic".into(),
                })
            }
        };
        let total = self.u32(&head[0..4]);
        if total < 28 || total % 4 != 0 || total > MAX_RECORD {
            return Err(PcapError::Format {
                offset: at,
                what: format!("section header has a bad length {total}"),
            });
        }
        let mut rest = vec![0u8; total as usize - 12];
        self.exact(&mut rest, "section header")?;
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, body: &[u8]) -> Result<(), PcapError> {
        if body.len() < 8 {
            return Err(PcapError::Format {
                offset: self.offset,
                what: "interface description block too short".into(),
            });
        }
        let mut iface = Interface {
            linktype: self.u16(&body[0..2]),
            snaplen: self.u32(&body[4..8]),
            units: 1_000_000,
        };
        let mut opts = &body[8..];
        while opts.len() >= 4 {
            let code = self.u16(&opts[0..2]);
            let len = usize::from(self.u16(&opts[2..4]));
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            if code == 0 {
                break;
            }
            if code == 9 && len == 1 {
                let r = value[0];
                let exp = u32::from(r & 0x7f);
                let base: u64 = if r & 0x80 != 0 { 2 } else { 10 };
                iface.units = base.checked_pow(exp).unwrap_or(1_000_000_000);
            }
            opts = opts.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// The next packet; `Ok(None)` at the end of the file.
    ///
    /// # Errors
    /// [`PcapError::Truncated`] when the file ends inside a record (a
    /// capture cut short), [`PcapError::Format`] for corrupt lengths,
    /// [`PcapError::Read`] on an I/O error.
    pub fn next_record(&mut self) -> Result<Option<Record>, PcapError> {
        match self.format {
            FileFormat::Pcap => self.next_pcap(),
            FileFormat::PcapNg => self.next_pcapng(),
        }
    }

    fn at_eof(&mut self, first: &mut [u8]) -> Result<bool, PcapError> {
        let n = read_full(&mut self.r, first).map_err(|source| PcapError::Read { source })?;
        self.offset += n as u64;
        match n {
            0 => Ok(true),
            n if n == first.len() => Ok(false),
            _ => Err(PcapError::Truncated {
                offset: self.offset - n as u64,
                what: "record header".into(),
            }),
        }
    }

    fn next_pcap(&mut self) -> Result<Option<Record>, PcapError> {
        let at = self.offset;
        let mut h = [0u8; 16];
        if self.at_eof(&mut h)? {
            return Ok(None);
        }
        let caplen = self.u32(&h[8..12]);
        if caplen > MAX_RECORD {
            return Err(PcapError::Format {
                offset: at,
                what: format!("record claims {caplen} captured bytes"),
            });
        }
        let mut data = vec![0u8; caplen as usize];
        self.exact(&mut data, "packet data")?;
        let sec = u64::from(self.u32(&h[0..4]));
        let frac = self.u32(&h[4..8]);
        let nsec = if self.nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        Ok(Some(Record {
            ts: Timestamp {
                sec: sec + u64::from(nsec / 1_000_000_000),
                nsec: nsec % 1_000_000_000,
            },
            orig_len: self.u32(&h[12..16]),
            data,
            linktype: self.linktype,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Record>, PcapError> {
        loop {
            let mut t = [0u8; 4];
            if self.at_eof(&mut t)? {
                return Ok(None);
            }
            let native = u32::from_ne_bytes(t);
            if native == PCAPNG_SHB || native.swap_bytes() == PCAPNG_SHB {
                self.section_header()?;
                continue;
            }
            let kind = self.u32(&t);
            let body = self.block_body(kind)?;
            match kind {
                PCAPNG_IDB => self.interface(&body)?,
                PCAPNG_EPB => {
                    if body.len() < 20 {
                        return Err(self.bad("enhanced packet block too short"));
                    }
                    let id = self.u32(&body[0..4]) as usize;
                    let iface = *self
                        .interfaces
                        .get(id)
                        .ok_or_else(|| self.bad("packet for an undeclared interface"))?;
                    let ts = (u64::from(self.u32(&body[4..8])) << 32)
                        | u64::from(self.u32(&body[8..12]));
                    let caplen = self.u32(&body[12..16]) as usize;
                    let orig_len = self.u32(&body[16..20]);
                    let data = body
                        .get(20..20 + caplen)
                        .ok_or_else(|| self.bad("packet data beyond its block"))?
                        .to_vec();
                    let ns = u128::from(ts) * 1_000_000_000 / u128::from(iface.units.max(1));
                    return Ok(Some(Record {
                        ts: Timestamp::from_nanos(ns),
                        orig_len,
                        data,
                        linktype: iface.linktype,
                    }));
                }
                PCAPNG_SPB => {
                    if body.len() < 4 {
                        return Err(self.bad("simple packet block too short"));
                    }
                    let iface = *self
                        .interfaces
                        .first()
                        .ok_or_else(|| self.bad("packet before any interface"))?;
                    let orig_len = self.u32(&body[0..4]);
                    let caplen = spb_caplen(orig_len, iface.snaplen, body.len() - 4);
                    return Ok(Some(Record {
                        ts: Timestamp::default(),
                        orig_len,
                        data: body[4..4 + caplen].to_vec(),
                        linktype: iface.linktype,
                    }));
                }
                _ => {} // statistics, name resolution, custom: skipped
            }
        }
    }

    fn bad(&self, what: &str) -> PcapError {
        PcapError::Format {
            offset: self.offset,
            what: what.into(),
        }
    }
}

/// Captured bytes of a simple packet block: the original length, cut to the
/// interface's snap length (0 means no limit, pcapng §4.2), and never more
/// than the block's data and padding (`room` bytes).
fn spb_caplen(orig_len: u32, snaplen: u32, room: usize) -> usize {
    let cap = match snaplen {
        0 => orig_len,
        s => orig_len.min(s),
    };
    (cap as usize).min(room)
}

impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<Record, PcapError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Reads until `buf` is full or the end of the data; returns the count.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::format::{self, InterfaceStats};
    use super::*;

    fn file(fmt: FileFormat, packets: &[(Timestamp, Vec<u8>, u32)]) -> Vec<u8> {
        let mut out = format::file_header(fmt, 128, Some("vrx"));
        for (ts, d, orig) in packets {
            format::record(fmt, &mut out, *ts, d, *orig);
        }
        if fmt == FileFormat::PcapNg {
            format::interface_statistics(&mut out, &InterfaceStats::default());
        }
        out
    }

    #[test]
    fn round_trip_both_formats() {
        let pkts = vec![
            (
                Timestamp {
                    sec: 1_700_000_000,
                    nsec: 123_456_789,
                },
                vec![1u8; 60],
                60,
            ),
            (
                Timestamp {
                    sec: 1_700_000_001,
                    nsec: 1,
                },
                vec![2u8; 7],
                1514,
            ),
            (Timestamp::default(), vec![], 0),
        ];
        for fmt in [FileFormat::Pcap, FileFormat::PcapNg] {
            let bytes = file(fmt, &pkts);
            let mut r = PcapReader::new(&bytes[..]).unwrap();
            assert_eq!(r.format(), fmt);
            let got: Vec<Record> = r.by_ref().map(Result::unwrap).collect();
            assert_eq!(got.len(), pkts.len());
            for (g, (ts, d, orig)) in got.iter().zip(&pkts) {
                assert_eq!((&g.ts, &g.data, g.orig_len, g.linktype), (ts, d, *orig, 1));
            }
            assert_eq!(r.snaplen(), 128);
            // Every cut inside a record is reported, never a panic.
            for cut in 1..bytes.len() {
                let mut n = 0;
                let res = PcapReader::new(&bytes[..cut]).and_then(|mut r| {
                    while r.next_record()?.is_some() {
                        n += 1;
                    }
                    Ok(())
                });
                if let Err(e) = res {
                    assert!(
                        matches!(e, PcapError::Truncated { .. } | PcapError::Format { .. }),
                        "{fmt} cut {cut}: {e}"
                    );
                }
                assert!(n <= pkts.len());
            }
        }
    }

    #[test]
    fn swapped_microsecond_pcap() {
        let mut b = Vec::new();
        b.extend_from_slice(&PCAP_MAGIC_USEC.to_be_bytes());
        b.extend_from_slice(&2u16.to_be_bytes());
        b.extend_from_slice(&4u16.to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&10u32.to_be_bytes());
        b.extend_from_slice(&999_999u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&[7, 8, 9]);
        let mut r = PcapReader::new(&b[..]).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(
            rec.ts,
            Timestamp {
                sec: 10,
                nsec: 999_999_000
            }
        );
        assert_eq!(rec.data, [7, 8, 9]);
        assert!(r.next_record().unwrap().is_none());
    }

    /// A little-endian pcapng file: a section header, one Ethernet
    /// interface with `snaplen`, and one simple packet block per packet
    /// (original length, then the data padded to 4 bytes).
    fn spb_file(snaplen: u32, packets: &[(u32, &[u8])]) -> Vec<u8> {
        fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
            let total = 12 + body.len().next_multiple_of(4) as u32;
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&total.to_le_bytes());
            out.extend_from_slice(body);
            out.resize(out.len() + body.len().next_multiple_of(4) - body.len(), 0);
            out.extend_from_slice(&total.to_le_bytes());
        }
        let mut out = Vec::new();
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        block(&mut out, PCAPNG_SHB, &shb);
        let mut idb = 1u16.to_le_bytes().to_vec();
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        block(&mut out, PCAPNG_IDB, &idb);
        for (orig, data) in packets {
            let mut spb = orig.to_le_bytes().to_vec();
            spb.extend_from_slice(data);
            block(&mut out, PCAPNG_SPB, &spb);
        }
        out
    }

    fn read_all(bytes: &[u8]) -> Vec<Record> {
        PcapReader::new(bytes)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn simple_packet_block_with_snaplen_0_is_not_cut() {
        let frame: Vec<u8> = (0..61u8).collect();
        let got = read_all(&spb_file(
            0,
            &[
                (60, &frame[..60]),
                // 61 bytes: three bytes of padding follow, not data.
                (61, &frame),
                // Inconsistent (says 1514, holds 61 bytes and 3 of padding):
                // everything the block holds, never beyond it.
                (1514, &frame),
                (0, &[]),
            ],
        ));
        let lens: Vec<(usize, u32)> = got.iter().map(|r| (r.data.len(), r.orig_len)).collect();
        assert_eq!(lens, [(60, 60), (61, 61), (64, 1514), (0, 0)]);
        assert_eq!(got[0].data, frame[..60]);
        assert_eq!(got[1].data, frame);
        assert_eq!(got[0].linktype, 1);
    }

    #[test]
    fn simple_packet_block_is_cut_to_a_nonzero_snaplen() {
        let frame = [7u8; 100];
        let got = read_all(&spb_file(64, &[(100, &frame), (10, &frame[..10])]));
        let lens: Vec<usize> = got.iter().map(|r| r.data.len()).collect();
        assert_eq!(lens, [64, 10]);
        assert_eq!(got[0].orig_len, 100);
    }

    #[test]
    fn spb_caplen_cases() {
        assert_eq!(spb_caplen(60, 0, 60), 60);
        assert_eq!(spb_caplen(61, 0, 64), 61);
        assert_eq!(spb_caplen(1514, 0, 64), 64);
        assert_eq!(spb_caplen(1514, 128, 1516), 128);
        assert_eq!(spb_caplen(u32::MAX, 0, 8), 8);
        assert_eq!(spb_caplen(0, 0, 0), 0);
    }

    #[test]
    fn not_a_capture() {
        assert!(matches!(
            PcapReader::new(&b"hello world, not pcap"[..]),
            Err(PcapError::Format { .. })
        ));
        assert!(matches!(
            PcapReader::new(&b""[..]),
            Err(PcapError::Format { .. })
        ));
    }
}
