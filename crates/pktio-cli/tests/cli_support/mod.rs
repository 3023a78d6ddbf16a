//! What the CLI test binaries share: the binary, an output's text for
//! failure messages, and reading a number out of a summary line. Each test
//! binary uses a part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The `pktio` binary under test.
pub fn pktio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pktio"))
}

/// Status, stdout and stderr of `o`, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The first number after `key` in `s`.
pub fn number_after(s: &str, key: &str) -> Option<u64> {
    let rest = &s[s.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|t| !t.is_empty())?
        .parse()
        .ok()
}
