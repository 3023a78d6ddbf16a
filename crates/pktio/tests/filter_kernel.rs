//! The compiled filters, run by the kernel on a corpus of generated frames,
//! against the reference evaluator (`Filter::matches`).
//!
//! - Classic BPF: attached with `SO_ATTACH_FILTER` to one end of an
//!   `AF_UNIX` datagram socketpair; each frame is sent from the other end and
//!   arrives (trimmed to the filter's return value) only if the filter
//!   accepts it. The kernel runs socket filters on unix datagrams the same
//!   way as on packet sockets (`sk_filter`), and delivery is synchronous, so
//!   a non-blocking receive right after the send tells the verdict. Needs no
//!   privilege, and covers frames shorter than 14 bytes.
//! - Cooked classic BPF (for `any` sockets): the kernel's checker accepts
//!   each program (what they select needs packet sockets:
//!   `filter_packet_lab.rs`).
//! - eBPF: the XDP program of the same filter, compiled with distinct
//!   verdicts (match → `XDP_DROP`, miss → `XDP_PASS`) because a redirect to
//!   an empty XSKMAP would return `XDP_PASS` either way, run with
//!   `BPF_PROG_TEST_RUN` on every frame of at least 14 bytes (the kernel's
//!   minimum for XDP test runs). Needs root (CAP_BPF + CAP_NET_ADMIN);
//!   skipped visibly otherwise.

#[path = "filter_corpus.rs"]
mod corpus;

use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;

use corpus::{base_frames, corpus, FILTERS, TRIVIAL};
use pktio::bpf::{Program, XdpAction, XskMap};
use pktio::filter::{CookedProgram, Filter, OnMatch};
use pktio_lab::skip::{skip_unless, Cap};

#[test]
fn every_filter_matches_some_frames_and_misses_others() {
    let corpus = corpus();
    for text in FILTERS {
        let f = Filter::parse(text).unwrap();
        let hits = corpus.iter().filter(|(_, fr)| f.matches(fr)).count();
        if !TRIVIAL.contains(text) {
            assert!(
                hits > 0 && hits < corpus.len(),
                "{text:?} matches {hits} of {} frames: the corpus does not exercise it",
                corpus.len()
            );
        }
    }
}

/// Receives what is queued on `rx`; `None` when nothing is.
fn try_recv(rx: &UnixDatagram, buf: &mut [u8]) -> Option<usize> {
    match rx.recv(buf) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => panic!("recv: {e}"),
    }
}

/// The cooked (`any`) programs of every filter pass the kernel's checker
/// (their loads from the network header and ancillary loads included);
/// what they select is checked on live sockets in `filter_packet_lab.rs`.
#[test]
fn cooked_programs_pass_the_kernels_checker() {
    let mut kernel = 0;
    for text in FILTERS {
        let filter = Filter::parse(text).unwrap();
        let CookedProgram::Kernel(prog) = filter.cbpf_program_cooked().unwrap() else {
            continue;
        };
        let (_tx, rx) = UnixDatagram::pair().expect("socketpair");
        prog.attach(rx.as_fd())
            .unwrap_or_else(|e| panic!("{text:?}: the kernel refused the cooked program: {e}"));
        kernel += 1;
    }
    assert!(
        kernel * 4 > FILTERS.len() * 3,
        "{kernel} of {}",
        FILTERS.len()
    );
}

#[test]
fn classic_bpf_agrees_with_the_evaluator() {
    const SNAPLEN: u32 = 96;
    let corpus = corpus();
    let mut buf = vec![0u8; 4096];
    let mut runs = 0;
    for text in FILTERS {
        let filter = Filter::parse(text).unwrap();
        let prog = filter.cbpf_program(SNAPLEN).unwrap();
        let (tx, rx) = UnixDatagram::pair().expect("socketpair");
        rx.set_nonblocking(true).unwrap();
        prog.attach(rx.as_fd())
            .unwrap_or_else(|e| panic!("{text:?}: the kernel refused the program: {e}"));
        for (name, frame) in &corpus {
            tx.send(frame).expect("send");
            let got = try_recv(&rx, &mut buf);
            let want = filter.matches(frame);
            match (want, got) {
                (true, Some(n)) => assert_eq!(
                    n,
                    frame.len().min(SNAPLEN as usize),
                    "{text:?} on {name}: wrong snap length"
                ),
                (false, None) => {}
                _ => panic!(
                    "{text:?} on {name} ({} bytes: {:02x?}): evaluator says {want}, classic BPF {}",
                    frame.len(),
                    frame,
                    got.is_some()
                ),
            }
            runs += 1;
        }
        assert!(try_recv(&rx, &mut buf).is_none());
    }
    eprintln!("classic BPF: {runs} verdicts compared");
}

/// Loads a program, or reports that this process may not.
fn load(code: &pktio::bpf::Code, maps: &[std::os::fd::BorrowedFd<'_>]) -> Program {
    Program::load_xdp(code, maps)
        .unwrap_or_else(|e| panic!("the verifier refused the program:\n{}\n{e}", code.listing()))
}

/// What loading XDP programs and creating an XSKMAP take.
const BPF: &[Cap] = &[Cap::BPF, Cap::NET_ADMIN];

#[test]
fn xdp_agrees_with_the_evaluator() {
    skip_unless!(BPF, "loading XDP programs");
    let corpus: Vec<_> = corpus()
        .into_iter()
        .filter(|(_, f)| f.len() >= pktio::bpf::MIN_TEST_FRAME)
        .collect();
    let mut runs = 0;
    for text in FILTERS {
        let filter = Filter::parse(text).unwrap();
        let code = filter
            .xdp_program_with(OnMatch::Return(XdpAction::Drop), XdpAction::Pass)
            .unwrap();
        let prog = load(&code, &[]);
        for (name, frame) in &corpus {
            let r = prog.test_run(frame, 1).expect("BPF_PROG_TEST_RUN");
            let want = if filter.matches(frame) {
                XdpAction::Drop
            } else {
                XdpAction::Pass
            };
            assert_eq!(
                r.action(),
                Some(want),
                "{text:?} on {name} ({} bytes: {frame:02x?})",
                frame.len()
            );
            assert_eq!(&r.data_out, frame, "the filter must not change the frame");
            runs += 1;
        }
    }
    eprintln!("XDP: {runs} verdicts compared");
}

#[test]
fn xdp_redirect_programs_load_and_pass_with_an_empty_map() {
    skip_unless!(BPF, "loading XDP programs and an XSKMAP");
    let map = XskMap::new(4).expect("an XSKMAP");
    let frame = &base_frames()[0].1;
    for text in FILTERS {
        let filter = Filter::parse(text).unwrap();
        let code = filter.xdp_program().unwrap();
        assert_eq!(code.map_slots(), 1, "{text:?}");
        let prog = load(&code, &[map.as_fd()]);
        // A match redirects to the (empty) slot of queue 0, whose fallback
        // is XDP_PASS; so does a miss.
        let r = prog.test_run(frame, 1).unwrap();
        assert_eq!(r.action(), Some(XdpAction::Pass), "{text:?}");
    }
}

/// What the compiled filter costs over the plain steering program, as the
/// kernel times it (`BPF_PROG_TEST_RUN` with `repeat`). Prints; asserts
/// nothing about time. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
fn filter_cost_over_plain_redirect() {
    skip_unless!(BPF, "loading XDP programs and an XSKMAP");
    let map = XskMap::new(1).expect("an XSKMAP");
    let frame = &base_frames()[0].1; // UDP to 4242: the filter below matches it
    let plain = Program::load_xdp(&pktio::bpf::progs::xsk_redirect(), &[map.as_fd()]).unwrap();
    let five = Filter::parse(
        "udp dst port 4242 and src net 198.18.0.0/15 and not vlan and len >= 60 and ether dst 02:00:c6:12:00:02",
    )
    .unwrap();
    let filtered = Program::load_xdp(&five.xdp_program().unwrap(), &[map.as_fd()]).unwrap();
    let repeat = 1_000_000;
    for round in 0..3 {
        let a = plain.test_run(frame, repeat).unwrap().duration_ns;
        let b = filtered.test_run(frame, repeat).unwrap().duration_ns;
        eprintln!(
            "round {round}: plain redirect {a} ns, five-primitive filter {b} ns, difference {} ns",
            i64::from(b) - i64::from(a)
        );
    }
}
