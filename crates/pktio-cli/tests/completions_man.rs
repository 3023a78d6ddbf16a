//! `pktio completions SHELL` and `pktio man`: what an installer packages.
//! The scripts and the page are generated from the same definitions as
//! `--help`, so every subcommand and flag is in them.

mod cli_support;

use cli_support::{pktio, text};

#[test]
fn completion_scripts_name_every_subcommand() {
    for (shell, marker) in [
        ("bash", "_pktio()"),
        ("zsh", "#compdef pktio"),
        ("fish", "complete -c pktio"),
    ] {
        let o = pktio().args(["completions", shell]).output().unwrap();
        let t = text(&o);
        assert!(o.status.success(), "{shell}: {t}");
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(marker), "{shell}: no {marker}: {t}");
        for sub in ["rxdrop", "bench", "capture", "doctor", "completions"] {
            assert!(s.contains(sub), "{shell}: no {sub}");
        }
        assert!(s.contains("take-over"), "{shell}: flags are completed");
    }
    let o = pktio().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_man_page_has_a_section_per_subcommand() {
    let o = pktio().arg("man").output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.starts_with(".ie") && page.contains(".TH pktio 1"),
        "{t}"
    );
    for sub in [
        "rxdrop", "txpush", "l2fwd", "bench", "capture", "gen", "doctor",
    ] {
        assert!(
            page.contains(&format!(".TH pktio-{sub} 1")),
            "no page for {sub}"
        );
    }
    // The options are there, with their help.
    assert!(page.contains("take\\-over") && page.contains("napi"), "{t}");
}
