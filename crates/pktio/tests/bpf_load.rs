//! Loading the generated programs into the running kernel, verifier errors,
//! maps, and `BPF_PROG_TEST_RUN`. Needs root (CAP_BPF + CAP_NET_ADMIN);
//! skips visibly otherwise. Nothing here attaches to an interface or sends
//! a packet: test runs happen inside the kernel on a copy of the frame.

use std::os::fd::AsFd;

use pktio::bpf::{
    progs, ArrayMap, Asm, BpfError, Code, Insn, PerCpuArray, Program, Reg::*, Size, XdpAction,
    XskMap,
};
use pktio_lab::skip::{skip_unless, Cap};

/// What loading XDP programs and creating BPF maps takes.
const BPF: &[Cap] = &[Cap::BPF, Cap::NET_ADMIN];
/// That and an AF_XDP socket to put in an XSKMAP slot.
const BPF_AND_XSK: &[Cap] = &[Cap::BPF, Cap::NET_ADMIN, Cap::NET_RAW];

/// A 64-byte Ethernet / IPv4 / UDP frame, 198.18.0.1:9 → 198.18.0.2:9.
fn udp_frame() -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]); // dst MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]); // src MAC
    f.extend_from_slice(&[0x08, 0x00]); // IPv4
    let ip_len: u16 = 64 - 14;
    let mut ip = [
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    let sum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    let udp_len: u16 = ip_len - 20;
    f.extend_from_slice(&[0, 9, 0, 9]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no UDP checksum
    f.resize(64, 0xab);
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn xsk_socket() -> std::os::fd::OwnedFd {
    rustix::net::socket(
        rustix::net::AddressFamily::XDP,
        rustix::net::SocketType::RAW,
        None,
    )
    .expect("AF_XDP socket (CONFIG_XDP_SOCKETS)")
}

#[test]
fn every_generated_program_loads() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    let xsks = XskMap::new(4).unwrap();
    let counters = PerCpuArray::new(1).unwrap();
    let with_xsks: [(&str, Code); 2] = [
        ("xsk_redirect", progs::xsk_redirect()),
        ("xsk_redirect_all", progs::xsk_redirect_all(2)),
    ];
    for (name, code) in &with_xsks {
        let prog = Program::load_xdp(code, &[xsks.as_fd()])
            .unwrap_or_else(|e| panic!("{name} did not load: {e}"));
        assert_eq!(prog.insn_count(), code.len());
        assert!(prog.id().unwrap() > 0);
    }
    for (name, code) in [
        ("xdp_pass", progs::xdp_pass()),
        ("xdp_drop", progs::xdp_drop()),
        ("xdp_tx", progs::xdp_tx()),
        ("xdp_aborted", progs::xdp_return(XdpAction::Aborted)),
    ] {
        Program::load_xdp(&code, &[]).unwrap_or_else(|e| panic!("{name} did not load: {e}"));
    }
    Program::load_xdp(&progs::count_then(XdpAction::Pass), &[counters.as_fd()])
        .unwrap_or_else(|e| panic!("count_then did not load: {e}"));
}

#[test]
fn a_broken_program_returns_the_verifier_log() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    // Out-of-bounds context read: struct xdp_md is 24 bytes.
    let mut a = Asm::new();
    a.ldx_mem(Size::W, R0, R1, 40).exit();
    let err = Program::load_xdp(&a.finish().unwrap(), &[]).unwrap_err();
    match &err {
        BpfError::Load {
            source,
            verifier_log,
        } => {
            assert_eq!(source.errno(), Some(libc::EACCES), "{err}");
            assert!(
                verifier_log.contains("invalid bpf_context access off=40 size=4"),
                "log: {verifier_log}"
            );
        }
        other => panic!("expected BpfError::Load, got {other:?}"),
    }
    // The Display carries the whole log.
    assert!(err.to_string().contains("invalid bpf_context access"));

    // No exit at the end.
    let no_exit = Code::from_insns(vec![Insn::new(0xb7, 0, 0, 0, 2)]);
    match Program::load_xdp(&no_exit, &[]) {
        Err(BpfError::Load { verifier_log, .. }) => {
            assert!(
                verifier_log.contains("last insn is not an exit or jmp"),
                "log: {verifier_log}"
            )
        }
        other => panic!("expected BpfError::Load, got {other:?}"),
    }

    // Reading a register never written.
    let mut a = Asm::new();
    a.mov64_reg(R0, R5).exit();
    match Program::load_xdp(&a.finish().unwrap(), &[]) {
        Err(BpfError::Load { verifier_log, .. }) => {
            assert!(verifier_log.contains("R5 !read_ok"), "log: {verifier_log}")
        }
        other => panic!("expected BpfError::Load, got {other:?}"),
    }
}

#[test]
fn map_count_must_match_the_program() {
    // Checked before any system call: runs without root too.
    let err = Program::load_xdp(&progs::xsk_redirect(), &[]).unwrap_err();
    assert!(matches!(
        err,
        BpfError::MapCount {
            expected: 1,
            got: 0
        }
    ));
}

#[test]
fn xsk_redirect_passes_while_the_slot_is_empty_and_redirects_once_set() {
    skip_unless!(BPF_AND_XSK, "XDP programs, an XSKMAP and an AF_XDP socket");
    let map = XskMap::new(4).unwrap();
    let prog = Program::load_xdp(&progs::xsk_redirect(), &[map.as_fd()]).unwrap();
    let frame = udp_frame();
    assert_eq!(frame.len(), 64);

    // Empty map: the fallback action.
    let run = prog.test_run(&frame, 1).unwrap();
    assert_eq!(run.action(), Some(XdpAction::Pass));
    assert_eq!(run.data_out, frame);

    // A socket in slot 0 (test runs see rx_queue_index 0): redirect.
    let socket = xsk_socket();
    map.set(0, socket.as_fd()).unwrap();
    assert_eq!(
        prog.test_run(&frame, 1).unwrap().action(),
        Some(XdpAction::Redirect)
    );
    // Slot 1 is not queue 0: still redirected by slot 0 only.
    map.unset(0).unwrap();
    map.set(1, socket.as_fd()).unwrap();
    assert_eq!(
        prog.test_run(&frame, 1).unwrap().action(),
        Some(XdpAction::Pass)
    );
    // Emptying an empty slot is fine; keys past the end are refused.
    map.unset(0).unwrap();
    assert!(matches!(
        map.set(4, socket.as_fd()),
        Err(BpfError::KeyOutOfRange {
            key: 4,
            max_entries: 4
        })
    ));
    // Only AF_XDP sockets go in an XSKMAP.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    match map.set(2, udp.as_fd()) {
        Err(BpfError::Sys(e)) => assert_eq!(e.errno(), Some(libc::EOPNOTSUPP)),
        other => panic!("expected EOPNOTSUPP, got {other:?}"),
    }
}

#[test]
fn xsk_redirect_all_uses_its_one_slot() {
    skip_unless!(BPF_AND_XSK, "XDP programs, an XSKMAP and an AF_XDP socket");
    let map = XskMap::new(8).unwrap();
    let prog = Program::load_xdp(&progs::xsk_redirect_all(5), &[map.as_fd()]).unwrap();
    let frame = udp_frame();
    assert_eq!(
        prog.test_run(&frame, 1).unwrap().action(),
        Some(XdpAction::Pass)
    );
    let socket = xsk_socket();
    map.set(5, socket.as_fd()).unwrap();
    assert_eq!(
        prog.test_run(&frame, 1).unwrap().action(),
        Some(XdpAction::Redirect)
    );
}

#[test]
fn fixed_verdicts() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    let frame = udp_frame();
    for (code, want) in [
        (progs::xdp_drop(), XdpAction::Drop),
        (progs::xdp_tx(), XdpAction::Tx),
        (progs::xdp_pass(), XdpAction::Pass),
    ] {
        let prog = Program::load_xdp(&code, &[]).unwrap();
        let run = prog.test_run(&frame, 100).unwrap();
        assert_eq!(run.action(), Some(want), "{}", code.name());
        assert_eq!(run.data_out, frame);
    }
}

#[test]
fn test_run_rejects_frames_shorter_than_ethernet() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    let prog = Program::load_xdp(&progs::xdp_pass(), &[]).unwrap();
    assert!(matches!(
        prog.test_run(&[0; 13], 1),
        Err(BpfError::FrameTooShort { len: 13 })
    ));
    assert!(prog.test_run(&[0; 14], 1).is_ok());
}

#[test]
fn count_then_counts_every_run() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    let counters = PerCpuArray::new(1).unwrap();
    assert!(counters.cpus() >= 1);
    let prog = Program::load_xdp(&progs::count_then(XdpAction::Drop), &[counters.as_fd()]).unwrap();
    let frame = udp_frame();
    let run = prog.test_run(&frame, 1000).unwrap();
    assert_eq!(run.action(), Some(XdpAction::Drop));
    assert_eq!(counters.sum(0).unwrap(), 1000);
    prog.test_run(&frame, 1).unwrap();
    assert_eq!(counters.sum(0).unwrap(), 1001);
    counters.set_all(0, 0).unwrap();
    assert_eq!(counters.sum(0).unwrap(), 0);
    assert!(matches!(
        counters.get(1),
        Err(BpfError::KeyOutOfRange { .. })
    ));
}

#[test]
fn array_map_reads_what_it_wrote() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    let map = ArrayMap::new(3).unwrap();
    assert_eq!(map.get(2).unwrap(), 0);
    map.set(2, u64::MAX - 1).unwrap();
    assert_eq!(map.get(2).unwrap(), u64::MAX - 1);
    assert_eq!(map.get(1).unwrap(), 0);
    assert!(matches!(map.set(3, 1), Err(BpfError::KeyOutOfRange { .. })));
}

#[test]
fn an_atomic_counter_program_updates_a_shared_array() {
    skip_unless!(BPF, "XDP programs and BPF maps");
    // Adds the packet length to entry 1 with an atomic add, returns XDP_PASS.
    let mut a = Asm::new();
    let out = a.label();
    a.ldx_mem(Size::W, R6, R1, 4) // data_end
        .ldx_mem(Size::W, R7, R1, 0) // data
        .alu64_reg(pktio::bpf::AluOp::Sub, R6, R7) // r6 = length
        .st_mem(Size::W, R10, -4, 1)
        .mov64_reg(R2, R10)
        .alu64_imm(pktio::bpf::AluOp::Add, R2, -4)
        .ld_map_fd(R1, 0)
        .call(pktio::bpf::Helper::MAP_LOOKUP_ELEM)
        .jmp_imm(pktio::bpf::JmpOp::Eq, R0, 0, out)
        .atomic_add(Size::DW, R0, R6, 0)
        .bind(out)
        .mov64_imm(R0, XdpAction::Pass.code() as i32)
        .exit();
    let map = ArrayMap::new(2).unwrap();
    let prog = Program::load_xdp(&a.finish().unwrap(), &[map.as_fd()]).unwrap();
    prog.test_run(&udp_frame(), 10).unwrap();
    assert_eq!(map.get(1).unwrap(), 640);
    assert_eq!(map.get(0).unwrap(), 0);
}

#[test]
fn without_capabilities_the_error_says_which_are_needed() {
    // Runs with or without root: the thread drops what it may have.
    let result = std::thread::spawn(|| {
        use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
        // Capabilities are per thread: this only affects the spawned one.
        let mut caps = capabilities(None).expect("capget");
        let bpf_caps = CapabilitySet::BPF
            | CapabilitySet::SYS_ADMIN
            | CapabilitySet::NET_ADMIN
            | CapabilitySet::PERFMON;
        caps.effective.remove(bpf_caps);
        set_capabilities(None, caps).expect("capset");
        (
            XskMap::new(1).map(drop),
            Program::load_xdp(&progs::xdp_pass(), &[]).map(drop),
        )
    })
    .join()
    .expect("the capability-less thread");
    for outcome in [result.0, result.1] {
        match outcome {
            Err(err @ BpfError::Permission { .. }) => {
                let text = err.to_string();
                assert!(
                    text.contains("CAP_BPF") && text.contains("CAP_NET_ADMIN"),
                    "{text}"
                );
            }
            other => panic!("expected Permission, got {other:?}"),
        }
    }
}
