//! Capture files as other tools see them: `tshark -r` (Debian package
//! `tshark`) reads pcap and pcapng files written by pktio with the right
//! packet count, lengths, timestamps and bytes; rotated files are each
//! readable. Fails when tshark is not installed (CI installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pktio::pcap::{
    CaptureOutput, FileFormat, InterfaceStats, OutputConfig, PcapReader, PcapWriter, Rotation,
    Target, Timestamp, WriterOptions,
};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("pktio-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// tshark with `home` (a test's own directory) as its home: no user
/// preferences (name resolution, columns) change its output, and any user
/// can run it.
fn tshark(home: &Path) -> Command {
    let mut c = Command::new("tshark");
    c.env("HOME", home);
    c
}

/// tshark is the reader these tests are about: without it, a failure.
fn require_tshark() {
    let o = tshark(&std::env::temp_dir()).arg("--version").output();
    assert!(
        o.is_ok_and(|o| o.status.success()),
        "tshark does not run: apt-get install tshark (.ci/run installs it)"
    );
}

/// The test packets: (frame, timestamp).
fn packets() -> Vec<(Vec<u8>, Timestamp)> {
    let mut out = Vec::new();
    let t0 = Timestamp {
        sec: 1_700_000_000,
        nsec: 123_456_789,
    };
    let spec = pktio::wire::UdpFrame {
        src_mac: [2, 0, 0xc6, 0x12, 0, 1],
        dst_mac: [2, 0, 0xc6, 0x12, 0, 2],
        src_ip: "198.18.0.1".parse().unwrap(),
        dst_ip: "198.18.0.2".parse().unwrap(),
        src_port: 9,
        dst_port: 4242,
    };
    for i in 0..40usize {
        let len = [60, 61, 99, 128, 1514][i % 5];
        let mut f = vec![0u8; len];
        spec.emit(&(i as u32).to_be_bytes(), len, &mut f).unwrap();
        if i % 7 == 3 {
            // A VLAN-tagged copy.
            f.splice(12..12, [0x81, 0x00, 0x00, 100]);
        }
        let ts = Timestamp::from_nanos(t0.as_nanos() + i as u128 * 1_000_001);
        out.push((f, ts));
    }
    out
}

/// tshark's view of a file: per packet (len, cap_len, epoch time text).
fn tshark_fields(file: &Path) -> Vec<(usize, usize, String, String)> {
    let out = tshark(file.parent().unwrap_or(Path::new("/")))
        .args(["-n", "-r"])
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.time_epoch",
            "-e",
            "udp.dstport",
        ])
        .output()
        .expect("tshark runs (apt-get install tshark; .ci/run installs it)");
    assert!(
        out.status.success(),
        "tshark -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_string(),
                f.get(3).unwrap_or(&"").to_string(),
            )
        })
        .collect()
}

/// tshark's hex dump (`-x`) of each packet.
fn tshark_bytes(file: &Path) -> Vec<Vec<u8>> {
    let out = tshark(file.parent().unwrap_or(Path::new("/")))
        .args(["-n", "-x", "-r"])
        .arg(file)
        .output()
        .expect("tshark runs (apt-get install tshark; .ci/run installs it)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut packets = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                packets.push(std::mem::take(&mut cur));
            }
            continue;
        }
        // "0000  02 00 c6 ...   ascii"
        let Some(hex) = line.get(6..).map(|r| r.get(..48).unwrap_or(r)) else {
            continue;
        };
        cur.extend(
            hex.split_whitespace()
                .map_while(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2)),
        );
    }
    if !cur.is_empty() {
        packets.push(cur);
    }
    packets
}

fn epoch(ts: Timestamp) -> String {
    format!("{}.{:09}", ts.sec, ts.nsec)
}

fn write_file(path: &Path, format: FileFormat, snaplen: u32) -> Vec<(Vec<u8>, Timestamp)> {
    let pkts = packets();
    let mut w = PcapWriter::create(
        path,
        WriterOptions {
            format,
            snaplen,
            ifname: Some("vrx".into()),
            buffer_size: 1024, // several write-outs
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for (f, ts) in &pkts {
        w.write_packet(*ts, f, f.len() as u32).unwrap();
    }
    let stats = w
        .finish(Some(&InterfaceStats {
            start: pkts[0].1,
            end: pkts[pkts.len() - 1].1,
            if_received: Some(100),
            if_dropped: Some(1),
            filter_accepted: Some(pkts.len() as u64),
            os_dropped: Some(2),
            delivered: Some(pkts.len() as u64),
        }))
        .unwrap();
    assert_eq!(stats.packets, pkts.len() as u64);
    assert_eq!(stats.bytes, std::fs::metadata(path).unwrap().len());
    assert!(stats.write_calls >= 2, "{stats:?}");
    pkts
}

fn check_with_tshark(path: &Path, pkts: &[(Vec<u8>, Timestamp)], snaplen: usize) {
    let fields = tshark_fields(path);
    assert_eq!(fields.len(), pkts.len(), "tshark's packet count");
    let bytes = tshark_bytes(path);
    assert_eq!(bytes.len(), pkts.len());
    for (i, ((f, ts), (len, cap, time, dport))) in pkts.iter().zip(&fields).enumerate() {
        assert_eq!(*len, f.len(), "packet {i} length");
        assert_eq!(*cap, f.len().min(snaplen), "packet {i} captured length");
        assert_eq!(time, &epoch(*ts), "packet {i} time");
        if *cap >= 38 + if i % 7 == 3 { 4 } else { 0 } {
            assert_eq!(dport, "4242", "packet {i} decoded");
        }
        assert_eq!(bytes[i], f[..f.len().min(snaplen)], "packet {i} bytes");
    }
}

#[test]
fn tshark_reads_pcap_with_nanosecond_timestamps() {
    require_tshark();
    let dir = TempDir::new("pcap");
    let p = dir.path("a.pcap");
    let pkts = write_file(&p, FileFormat::Pcap, 262_144);
    check_with_tshark(&p, &pkts, usize::MAX);
}

#[test]
fn tshark_reads_pcapng() {
    require_tshark();
    let dir = TempDir::new("pcapng");
    let p = dir.path("a.pcapng");
    let pkts = write_file(&p, FileFormat::PcapNg, 262_144);
    check_with_tshark(&p, &pkts, usize::MAX);
    // The interface block's name and the statistics block.
    let out = Command::new("capinfos")
        .arg(&p)
        .output()
        .expect("capinfos runs (wireshark-common, installed with tshark)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "capinfos: {text}");
    assert!(text.contains("pcapng"), "{text}");
    assert!(text.contains("vrx"), "{text}");
}

#[test]
fn tshark_reads_truncated_snaplen_captures() {
    require_tshark();
    let dir = TempDir::new("snap");
    for (name, format) in [
        ("s.pcap", FileFormat::Pcap),
        ("s.pcapng", FileFormat::PcapNg),
    ] {
        let p = dir.path(name);
        let pkts = write_file(&p, format, 64);
        check_with_tshark(&p, &pkts, 64);
    }
}

#[test]
fn our_reader_reads_what_we_write() {
    let dir = TempDir::new("reader");
    for (name, format) in [
        ("r.pcap", FileFormat::Pcap),
        ("r.pcapng", FileFormat::PcapNg),
    ] {
        let p = dir.path(name);
        let pkts = write_file(&p, format, 100);
        let r = PcapReader::open(&p).unwrap();
        assert_eq!(r.format(), format);
        let got: Vec<_> = r.map(Result::unwrap).collect();
        assert_eq!(got.len(), pkts.len());
        for (g, (f, ts)) in got.iter().zip(&pkts) {
            assert_eq!(g.ts, *ts);
            assert_eq!(g.orig_len as usize, f.len());
            assert_eq!(g.data, f[..f.len().min(100)]);
        }
    }
}

#[test]
fn size_rotation_with_a_ring_of_files() {
    let dir = TempDir::new("rotate");
    let base = dir.path("cap.pcap");
    let mut out = CaptureOutput::open(OutputConfig {
        target: Target::File(base.clone()),
        writer: WriterOptions::default(),
        rotation: Rotation::Size(2_000),
        max_files: Some(3),
    })
    .unwrap();
    let pkts = packets();
    for (f, ts) in &pkts {
        out.write_packet(*ts, f, f.len() as u32).unwrap();
    }
    let summary = out.finish(None).unwrap();
    assert_eq!(summary.stats.packets, pkts.len() as u64);
    assert!(summary.files_opened > 3, "{summary:?}");
    // Exactly the three ring files exist; each is at most 2000 bytes
    // (unless one packet alone is bigger), readable, and together they
    // hold the last packets in order.
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["cap.pcap0", "cap.pcap1", "cap.pcap2"]);
    let last = summary.files_opened - 1;
    let mut seen = Vec::new();
    for k in (last.saturating_sub(2))..=last {
        let p = pktio::pcap::rotated_name(&base, k, Some(3));
        let len = std::fs::metadata(&p).unwrap().len();
        let recs: Vec<_> = PcapReader::open(&p).unwrap().map(Result::unwrap).collect();
        assert!(
            len <= 2_000 || recs.len() == 1,
            "{} is {len} bytes",
            p.display()
        );
        assert!(!recs.is_empty());
        seen.extend(recs.into_iter().map(|r| r.data));
        assert!(!tshark_fields(&p).is_empty());
    }
    let tail: Vec<Vec<u8>> = pkts[pkts.len() - seen.len()..]
        .iter()
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(seen, tail);
}

#[test]
fn time_rotation_numbers_files() {
    let dir = TempDir::new("rotate-time");
    let base = dir.path("t.pcapng");
    let mut out = CaptureOutput::open(OutputConfig {
        target: Target::File(base.clone()),
        writer: WriterOptions {
            format: FileFormat::PcapNg,
            ..WriterOptions::default()
        },
        rotation: Rotation::Time(Duration::from_secs(1)),
        max_files: None,
    })
    .unwrap();
    // Packets 0.4 s apart from now on: a new file every 3 packets.
    let t0 = Timestamp::now();
    for i in 0..9u128 {
        let ts = Timestamp::from_nanos(t0.as_nanos() + i * 400_000_000);
        out.write_packet(ts, &[0u8; 60], 60).unwrap();
    }
    let s = out.finish(None).unwrap();
    assert_eq!(s.files_opened, 3);
    for (k, name) in ["t.pcapng", "t.pcapng1", "t.pcapng2"].iter().enumerate() {
        let n = PcapReader::open(&dir.path(name)).unwrap().count();
        assert_eq!(n, 3, "file {k}");
    }
}
