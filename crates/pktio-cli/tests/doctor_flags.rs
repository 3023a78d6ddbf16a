//! `pktio doctor`'s flags: every bad value or combination ends with exit
//! status 2 and a message naming the flag and the valid range, before
//! anything is read; nothing wraps into "ok".

mod cli_support;
use cli_support::{pktio, text};

/// Runs `pktio args` and checks exit status 2, a message with `flag` and
/// `range`, nothing on stdout and no panic.
fn assert_refused(args: &[&str], flag: &str, range: &str) {
    let o = pktio().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    assert!(
        err.contains(flag) && err.contains(range),
        "{args:?}: {}",
        text(&o)
    );
    assert!(!err.contains("panicked"), "{args:?}: {}", text(&o));
    assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o));
}

#[test]
fn headroom_beyond_the_frame_is_a_usage_error_with_the_range() {
    // Within clap's 0..=65216 but no room left in the frame.
    assert_refused(
        &["doctor", "-i", "lo", "--headroom", "4000"],
        "--headroom 4000",
        "use 0 to 3776",
    );
    assert_refused(
        &["doctor", "-i", "lo", "--headroom", "3777"],
        "--headroom 3777",
        "use 0 to 3776",
    );
    assert_refused(
        &[
            "doctor",
            "-i",
            "lo",
            "--frame-size",
            "2048",
            "--headroom",
            "1729",
        ],
        "--headroom 1729",
        "use 0 to 1728",
    );
    // Beyond u32: refused by the parser, never wrapped.
    for v in ["4294967295", "4294967296", "65217"] {
        assert_refused(
            &["doctor", "-i", "lo", "--headroom", v],
            "--headroom",
            "from 0 to 65216",
        );
    }
}

#[test]
fn the_largest_headroom_that_fits_is_accepted() {
    let o = pktio()
        .args([
            "doctor",
            "-i",
            "lo",
            "--headroom",
            "3776",
            "--fail-on",
            "never",
        ])
        .output()
        .unwrap();
    // Accepted: the run reports (lo's MTU may be a finding, not an error).
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn frame_size_watch_sample_and_count_are_checked_when_parsed() {
    for v in ["0", "100", "2047", "65537", "4294967296", "-1", "nan", "4k"] {
        assert_refused(
            &["doctor", "--frame-size", v],
            "--frame-size",
            "from 2048 to 65536",
        );
    }
    for v in ["0", "-1", "nan", "inf", "1e300", "86401", "x"] {
        assert_refused(&["doctor", "--watch", v], "--watch", "from 0.001 to 86400");
        assert_refused(
            &[
                "doctor",
                "--why-no-packets",
                "-i",
                "lo",
                "-q",
                "0",
                "--sample",
                v,
            ],
            "--sample",
            "from 0.001 to 86400",
        );
    }
    assert_refused(
        &["doctor", "--watch", "1", "--count", "0"],
        "--count",
        "1..",
    );
}

#[test]
fn why_no_packets_without_its_interface_or_queue_is_a_usage_error() {
    assert_refused(
        &["doctor", "--why-no-packets", "-i", "lo"],
        "--why-no-packets",
        "-q QUEUE",
    );
    assert_refused(
        &["doctor", "--why-no-packets", "-q", "0"],
        "--why-no-packets",
        "exactly one interface",
    );
}
