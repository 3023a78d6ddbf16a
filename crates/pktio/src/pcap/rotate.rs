//! Where captured packets go: one file, standard output, or a series of
//! files rotated by size or by time, optionally a ring of a fixed number.
//!
//! Names follow tcpdump's `-C`: the first file is the name given, the next
//! ones have a number appended (`cap.pcap`, `cap.pcap1`, `cap.pcap2`, …).
//! With a file count *N* (`-W`) the files are `cap.pcap0` … `cap.pcap<N-1>`,
//! the number zero-padded to the width of *N − 1*, and the oldest is
//! overwritten once all exist. Time rotation (`-G`) numbers files the same
//! way (tcpdump would format the name with `strftime`; pktio does not) and,
//! like tcpdump, starts a new file when a packet arrives after the interval:
//! a file holds at most that interval of packet timestamps, counted from
//! its opening (the first file) or its first packet (the next ones).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::format::{record_len, InterfaceStats, Timestamp};
use super::writer::{PcapWriter, WriteStats, WriterOptions};
use super::PcapError;

/// When to start a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rotation {
    /// Never: one file.
    #[default]
    None,
    /// Before a file would grow beyond this many bytes (tcpdump `-C`
    /// counts in units of 1,000,000 bytes).
    Size(u64),
    /// When a packet arrives this long after the file was opened (`-G`).
    Time(Duration),
}

/// Where packets are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A file (the first of a series when rotating).
    File(PathBuf),
    /// Standard output (`-w -`).
    Stdout,
}

/// Everything about the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputConfig {
    /// File or standard output.
    pub target: Target,
    /// Format, snap length, buffer.
    pub writer: WriterOptions,
    /// Rotation.
    pub rotation: Rotation,
    /// Keep at most this many files, overwriting the oldest (`-W`; needs a
    /// rotation).
    pub max_files: Option<u32>,
}

/// The name of the `index`-th file (0-based) of a series.
pub fn rotated_name(base: &Path, index: u64, max_files: Option<u32>) -> PathBuf {
    let mut name: OsString = base.as_os_str().to_owned();
    match max_files {
        None if index == 0 => return base.to_path_buf(),
        None => name.push(index.to_string()),
        Some(n) => {
            let n = u64::from(n.max(1));
            let width = (n - 1).to_string().len();
            name.push(format!("{:0width$}", index % n));
        }
    }
    PathBuf::from(name)
}

/// What an output did, over all its files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputSummary {
    /// Totals over the files.
    pub stats: WriteStats,
    /// Files opened (a ring counts each reuse).
    pub files_opened: u64,
    /// The file being written last.
    pub last_file: Option<PathBuf>,
}

/// A capture output: the current file and the rotation state.
#[derive(Debug)]
pub struct CaptureOutput {
    cfg: OutputConfig,
    current: Option<PcapWriter>,
    index: u64,
    opened_at: Timestamp,
    done: WriteStats,
}

impl CaptureOutput {
    /// Checks the configuration and opens the first file.
    ///
    /// # Errors
    /// [`PcapError::Config`] for a rotation or file count with standard
    /// output, a file count without a rotation, a zero size, interval or
    /// count; [`PcapError::Create`] when the file cannot be created.
    pub fn open(cfg: OutputConfig) -> Result<CaptureOutput, PcapError> {
        let bad = |m: &str| Err(PcapError::Config(m.to_string()));
        match (&cfg.target, cfg.rotation, cfg.max_files) {
            (Target::Stdout, Rotation::None, None) => {}
            (Target::Stdout, _, _) => {
                return bad("rotating files (-C, -G, -W) needs a file name, not `-w -`")
            }
            (_, Rotation::None, Some(_)) => {
                return bad("a file count (-W) needs a rotation: -C MB or -G SECONDS")
            }
            (_, Rotation::Size(0), _) => return bad("a rotation size must be at least 1 byte"),
            (_, Rotation::Time(d), _) if d.is_zero() => {
                return bad("a rotation interval must be longer than zero")
            }
            (_, _, Some(0)) => return bad("the file count (-W) must be at least 1"),
            _ => {}
        }
        let mut out = CaptureOutput {
            cfg,
            current: None,
            index: 0,
            opened_at: Timestamp::now(),
            done: WriteStats::default(),
        };
        out.current = Some(out.open_file(0)?);
        Ok(out)
    }

    fn open_file(&mut self, index: u64) -> Result<PcapWriter, PcapError> {
        self.opened_at = Timestamp::now();
        Ok(match &self.cfg.target {
            Target::Stdout => PcapWriter::stdout(self.cfg.writer.clone()),
            Target::File(base) => PcapWriter::create(
                &rotated_name(base, index, self.cfg.max_files),
                self.cfg.writer.clone(),
            )?,
        })
    }

    /// Closes the current file and opens the next, whose time starts at
    /// `ts` (the packet that starts it).
    fn rotate(&mut self, ts: Timestamp) -> Result<(), PcapError> {
        if let Some(w) = self.current.take() {
            let s = w.finish(None)?;
            self.done.add(&s);
        }
        self.index += 1;
        self.current = Some(self.open_file(self.index)?);
        self.opened_at = ts;
        Ok(())
    }

    /// Writes one packet (cut to the snap length), rotating first if the
    /// file is full or old enough.
    ///
    /// # Errors
    /// [`PcapError::Write`] (e.g. a full disk; the file keeps its whole
    /// records), [`PcapError::Create`] for the next file of a rotation.
    pub fn write_packet(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), PcapError> {
        let rotate = match (self.cfg.rotation, &self.current) {
            (Rotation::None, _) | (_, None) => false,
            (Rotation::Size(max), Some(w)) => {
                let cap = data.len().min(self.cfg.writer.snaplen as usize);
                w.packets() > 0 && w.len() + record_len(w.format(), cap) as u64 > max
            }
            (Rotation::Time(every), Some(w)) => {
                w.packets() > 0 && ts.as_nanos() >= self.opened_at.as_nanos() + every.as_nanos()
            }
        };
        if rotate {
            self.rotate(ts)?;
        }
        match &mut self.current {
            Some(w) => w.write_packet(ts, data, orig_len),
            None => Err(PcapError::Config("the output is closed".into())),
        }
    }

    /// Writes buffered packets out (call when the capture is idle, so a
    /// reader of the file or pipe sees them).
    ///
    /// # Errors
    /// As [`CaptureOutput::write_packet`].
    pub fn flush(&mut self) -> Result<(), PcapError> {
        match &mut self.current {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// Packets written or buffered so far, over all files.
    pub fn packets(&self) -> u64 {
        self.done.packets + self.current.as_ref().map_or(0, PcapWriter::packets)
    }

    /// Time spent in `write(2)` so far, over all files.
    pub fn write_time(&self) -> Duration {
        self.done.write_time
            + self
                .current
                .as_ref()
                .map_or(Duration::ZERO, |w| w.stats().write_time)
    }

    /// The file being written (`None` for standard output).
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().and_then(|w| w.path())
    }

    /// Flushes and closes the current file, with interface statistics for
    /// pcapng.
    ///
    /// # Errors
    /// As [`CaptureOutput::write_packet`].
    pub fn finish(mut self, stats: Option<&InterfaceStats>) -> Result<OutputSummary, PcapError> {
        let last_file = self.current_path().map(Path::to_path_buf);
        if let Some(w) = self.current.take() {
            let s = w.finish(stats)?;
            self.done.add(&s);
        }
        Ok(OutputSummary {
            stats: self.done.clone(),
            files_opened: self.index + 1,
            last_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_tcpdump() {
        let b = Path::new("/tmp/cap.pcap");
        assert_eq!(rotated_name(b, 0, None), PathBuf::from("/tmp/cap.pcap"));
        assert_eq!(rotated_name(b, 1, None), PathBuf::from("/tmp/cap.pcap1"));
        assert_eq!(rotated_name(b, 12, None), PathBuf::from("/tmp/cap.pcap12"));
        assert_eq!(rotated_name(b, 0, Some(3)), PathBuf::from("/tmp/cap.pcap0"));
        assert_eq!(rotated_name(b, 4, Some(3)), PathBuf::from("/tmp/cap.pcap1"));
        assert_eq!(
            rotated_name(b, 7, Some(12)),
            PathBuf::from("/tmp/cap.pcap07")
        );
        assert_eq!(
            rotated_name(b, 12, Some(12)),
            PathBuf::from("/tmp/cap.pcap00")
        );
        assert_eq!(rotated_name(b, 5, Some(1)), PathBuf::from("/tmp/cap.pcap0"));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let cfg = |target, rotation, max_files| OutputConfig {
            target,
            writer: WriterOptions::default(),
            rotation,
            max_files,
        };
        let f = || Target::File(PathBuf::from("/nonexistent-dir-pktio/x"));
        for (c, want) in [
            (
                cfg(Target::Stdout, Rotation::Size(10), None),
                "needs a file name",
            ),
            (
                cfg(Target::Stdout, Rotation::None, Some(2)),
                "needs a file name",
            ),
            (cfg(f(), Rotation::None, Some(2)), "needs a rotation"),
            (cfg(f(), Rotation::Size(0), None), "at least 1 byte"),
            (
                cfg(f(), Rotation::Time(Duration::ZERO), None),
                "longer than zero",
            ),
            (cfg(f(), Rotation::Size(5), Some(0)), "at least 1"),
        ] {
            let e = CaptureOutput::open(c).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        let e = CaptureOutput::open(cfg(f(), Rotation::None, None)).unwrap_err();
        assert!(matches!(e, PcapError::Create { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent-dir-pktio/x"), "{e}");
    }
}
