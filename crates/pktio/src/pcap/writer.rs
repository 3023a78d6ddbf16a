//! One capture file (or standard output), written in whole records through
//! a large buffer.
//!
//! Packets are appended to an in-memory buffer and written out with few,
//! large `write(2)` calls. The buffer only ever holds whole records, and
//! the writer remembers where each ends: if a write fails part-way (a full
//! disk: `ENOSPC`), the file is truncated back to the last whole record
//! (`ftruncate`), so it stays readable, and the error says how many packets
//! it keeps. Standard output cannot be truncated; there the error says the
//! stream may end inside a record.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::format::{self, FileFormat, InterfaceStats, Timestamp};
use super::PcapError;

/// How to write a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// pcap or pcapng.
    pub format: FileFormat,
    /// Bytes kept of each packet (recorded in the file header); packets
    /// given to [`PcapWriter::write_packet`] are cut to it.
    pub snaplen: u32,
    /// Interface name for the pcapng interface block.
    pub ifname: Option<String>,
    /// Buffer size: records are written out when it fills (and on
    /// [`PcapWriter::flush`]).
    pub buffer_size: usize,
    /// The link type in the file header (`LINKTYPE_ETHERNET` unless the
    /// records come from a file of another link type).
    pub linktype: u16,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            format: FileFormat::Pcap,
            snaplen: super::MAX_SNAPLEN,
            ifname: None,
            buffer_size: 1 << 20,
            linktype: format::LINKTYPE_ETHERNET,
        }
    }
}

enum Sink {
    File(File),
    Stdout(io::Stdout),
    Other(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::File(_) => "File",
            Sink::Stdout(_) => "Stdout",
            Sink::Other(_) => "Other",
        })
    }
}

impl Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(b),
            Sink::Stdout(s) => s.write(b),
            Sink::Other(w) => w.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(_) => Ok(()),
            Sink::Stdout(s) => s.flush(),
            Sink::Other(w) => w.flush(),
        }
    }
}

/// What a writer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Packet records written (in the file).
    pub packets: u64,
    /// Bytes in the file.
    pub bytes: u64,
    /// `write(2)` calls made.
    pub write_calls: u64,
    /// Time spent in them: how long writing held up the capture loop.
    pub write_time: Duration,
}

impl WriteStats {
    /// Adds another writer's counts (rotated files).
    pub fn add(&mut self, other: &WriteStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.write_calls += other.write_calls;
        self.write_time += other.write_time;
    }
}

/// A capture file being written. Flushed on drop (best effort); call
/// [`PcapWriter::finish`] to learn about errors.
#[derive(Debug)]
pub struct PcapWriter {
    sink: Sink,
    name: String,
    path: Option<PathBuf>,
    opts: WriterOptions,
    buf: Vec<u8>,
    /// End offset in `buf` of each whole record, and whether it is a packet.
    marks: Vec<(usize, bool)>,
    /// Bytes in the file (always a whole number of records).
    file_len: u64,
    stats: WriteStats,
    failed: bool,
    finished: bool,
}

impl PcapWriter {
    /// Creates (or truncates) the file at `path` and writes the file header
    /// into the buffer (`open(O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)`).
    /// A symbolic link at `path` is refused, not followed: a root process
    /// writing into a shared directory such as `/tmp` must not be steered
    /// onto another file by a link someone else planted there.
    ///
    /// # Errors
    /// [`PcapError::Symlink`] when `path` is a symbolic link;
    /// [`PcapError::Create`] when the file cannot be created (a directory
    /// that does not exist, no permission, a read-only file system).
    pub fn create(path: &Path, opts: WriterOptions) -> Result<PcapWriter, PcapError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| {
                let is_link = std::fs::symlink_metadata(path)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if source.raw_os_error() == Some(libc::ELOOP) && is_link {
                    PcapError::Symlink {
                        path: path.to_path_buf(),
                    }
                } else {
                    PcapError::Create {
                        path: path.to_path_buf(),
                        source,
                    }
                }
            })?;
        Ok(Self::new(
            Sink::File(file),
            path.display().to_string(),
            Some(path.to_path_buf()),
            opts,
        ))
    }

    /// Writes to standard output (`-w -`).
    pub fn stdout(opts: WriterOptions) -> PcapWriter {
        Self::new(
            Sink::Stdout(io::stdout()),
            "standard output".into(),
            None,
            opts,
        )
    }

    /// Writes to any writer (`name` is used in messages). Whole-record
    /// truncation after an error is only possible for files.
    pub fn from_writer(w: Box<dyn Write + Send>, name: &str, opts: WriterOptions) -> PcapWriter {
        Self::new(Sink::Other(w), name.into(), None, opts)
    }

    fn new(sink: Sink, name: String, path: Option<PathBuf>, opts: WriterOptions) -> PcapWriter {
        let mut buf = Vec::with_capacity(opts.buffer_size.max(4096) + 70_000);
        buf.extend_from_slice(&format::file_header_for(
            opts.format,
            opts.snaplen,
            opts.ifname.as_deref(),
            opts.linktype,
        ));
        let marks = vec![(buf.len(), false)];
        PcapWriter {
            sink,
            name,
            path,
            opts,
            buf,
            marks,
            file_len: 0,
            stats: WriteStats::default(),
            failed: false,
            finished: false,
        }
    }

    /// The file's path (`None` for standard output and other writers).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The format.
    pub fn format(&self) -> FileFormat {
        self.opts.format
    }

    /// Bytes written plus bytes buffered.
    pub fn len(&self) -> u64 {
        self.file_len + self.buf.len() as u64
    }

    /// Whether nothing at all (not even the header) was written or buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Packets written plus packets buffered.
    pub fn packets(&self) -> u64 {
        self.stats.packets + self.marks.iter().filter(|m| m.1).count() as u64
    }

    /// What was written so far (not counting the buffer).
    pub fn stats(&self) -> &WriteStats {
        &self.stats
    }

    /// Appends one packet: `data` is cut to the snap length, `orig_len` is
    /// its length on the wire. Writes the buffer out when it is full.
    ///
    /// # Errors
    /// [`PcapError::Write`] when writing out fails (the file then ends at the
    /// last whole record); [`PcapError::Failed`] for any call after that.
    pub fn write_packet(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> Result<(), PcapError> {
        if self.failed {
            return Err(PcapError::Failed {
                name: self.name.clone(),
            });
        }
        let cap = data.len().min(self.opts.snaplen as usize);
        format::record(self.opts.format, &mut self.buf, ts, &data[..cap], orig_len);
        self.marks.push((self.buf.len(), true));
        if self.buf.len() >= self.opts.buffer_size {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffer out.
    ///
    /// # Errors
    /// As [`PcapWriter::write_packet`].
    pub fn flush(&mut self) -> Result<(), PcapError> {
        if self.failed {
            return Err(PcapError::Failed {
                name: self.name.clone(),
            });
        }
        self.write_out()?;
        let t0 = Instant::now();
        let r = self.sink.flush();
        self.stats.write_time += t0.elapsed();
        r.map_err(|source| self.fail(source, 0))
    }

    /// Flushes, appends the pcapng interface statistics block (`stats`,
    /// pcapng only) and closes the file.
    ///
    /// # Errors
    /// As [`PcapWriter::write_packet`].
    pub fn finish(mut self, stats: Option<&InterfaceStats>) -> Result<WriteStats, PcapError> {
        if self.failed {
            self.finished = true;
            return Err(PcapError::Failed {
                name: self.name.clone(),
            });
        }
        if let (FileFormat::PcapNg, Some(s)) = (self.opts.format, stats) {
            format::interface_statistics(&mut self.buf, s);
            self.marks.push((self.buf.len(), false));
        }
        let r = self.flush();
        self.finished = true;
        r.map(|()| self.stats.clone())
    }

    fn write_out(&mut self) -> Result<(), PcapError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let mut done = 0usize;
        let mut result = Ok(());
        while done < self.buf.len() {
            self.stats.write_calls += 1;
            match self.sink.write(&self.buf[done..]) {
                Ok(0) => {
                    result = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.stats.write_time += t0.elapsed();
        match result {
            Ok(()) => {
                self.file_len += self.buf.len() as u64;
                self.stats.bytes = self.file_len;
                self.stats.packets += self.marks.iter().filter(|m| m.1).count() as u64;
                self.buf.clear();
                self.marks.clear();
                Ok(())
            }
            Err(e) => Err(self.fail(e, done)),
        }
    }

    /// After `done` bytes of the buffer reached the sink and then `source`:
    /// cuts the file back to the last whole record.
    fn fail(&mut self, source: io::Error, done: usize) -> PcapError {
        self.failed = true;
        let whole = self.marks.iter().take_while(|m| m.0 <= done).count();
        let boundary = if whole == 0 {
            0
        } else {
            self.marks[whole - 1].0
        };
        let kept_packets =
            self.stats.packets + self.marks[..whole].iter().filter(|m| m.1).count() as u64;
        let keep_len = self.file_len + boundary as u64;
        let truncated = match &mut self.sink {
            Sink::File(f) => f
                .set_len(keep_len)
                .and_then(|()| f.seek(SeekFrom::Start(keep_len)).map(|_| ()))
                .is_ok(),
            _ => boundary == done,
        };
        self.file_len = keep_len;
        self.stats.bytes = keep_len;
        self.stats.packets = kept_packets;
        self.buf.clear();
        self.marks.clear();
        PcapError::Write {
            name: self.name.clone(),
            source,
            kept_packets,
            whole_records: truncated,
        }
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        if !self.finished && !self.failed {
            // Best effort: an error here has nobody to go to; `finish`
            // reports it.
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that accepts `room` bytes, then fails like a full disk.
    struct Full {
        got: Arc<Mutex<Vec<u8>>>,
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let mut got = self.got.lock().unwrap();
            let n = b.len().min(self.room - got.len());
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_sink_reports_whole_records_kept() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let opts = WriterOptions {
            buffer_size: 100,
            ..WriterOptions::default()
        };
        // Header 24 + records of 16 + 60 = 76: room for the header and 3
        // records plus part of a 4th.
        let room = 24 + 3 * 76 + 30;
        let mut w = PcapWriter::from_writer(
            Box::new(Full {
                got: got.clone(),
                room,
            }),
            "test",
            opts,
        );
        let mut err = None;
        for _ in 0..10 {
            if let Err(e) = w.write_packet(Timestamp::now(), &[1; 60], 60) {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("the sink fills up");
        match &err {
            PcapError::Write {
                kept_packets,
                whole_records,
                ..
            } => {
                assert_eq!(*kept_packets, 3);
                assert!(!whole_records, "a plain writer cannot be truncated");
            }
            other => panic!("{other}"),
        }
        assert!(err.is_disk_full(), "{err}");
        assert!(matches!(
            w.write_packet(Timestamp::now(), &[1; 60], 60),
            Err(PcapError::Failed { .. })
        ));
    }

    #[test]
    fn snaplen_cuts_and_counts() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let opts = WriterOptions {
            snaplen: 10,
            ..WriterOptions::default()
        };
        let mut w = PcapWriter::from_writer(
            Box::new(Full {
                got: got.clone(),
                room: 1 << 20,
            }),
            "test",
            opts,
        );
        w.write_packet(Timestamp::now(), &[9; 100], 100).unwrap();
        assert_eq!(w.packets(), 1);
        let stats = w.finish(None).unwrap();
        assert_eq!(stats.packets, 1);
        assert_eq!(stats.bytes, 24 + 16 + 10);
        assert_eq!(got.lock().unwrap().len(), 24 + 16 + 10);
    }
}
