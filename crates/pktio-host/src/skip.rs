//! # The skip policy for tests that need privileges
//!
//! A test may skip only because the process lacks a capability it needs,
//! and it says so: it asks the capability probe ([`crate::caps`]) which of
//! the capabilities it needs are missing; if any are, it prints
//!
//! ```text
//! SKIPPED <test>: needs CAP_NET_RAW, CAP_BPF (an AF_XDP socket)
//! ```
//!
//! to stderr and returns. Otherwise it runs, and any error fails it: a test
//! never skips by swallowing an error, and never because the facility it
//! is about is missing (a kernel without AF_XDP fails the AF_XDP tests).
//!
//! [`skip_unless!`](crate::skip_unless) is the form tests use: it names the
//! test itself and returns from it. [`lacks`] is the function behind it.

use crate::caps::Cap;

/// Whether the process lacks any of `needs`; if it does, prints
/// `SKIPPED <test>: needs CAP_A, CAP_B (<why>)`, naming only the missing
/// ones, to stderr. `why` says what the capabilities are for.
///
/// # Panics
/// When the probe cannot read this process's capabilities: that is an
/// error, not a reason to skip.
pub fn lacks(test: &str, needs: &[Cap], why: &str) -> bool {
    let missing = crate::caps::missing(needs)
        .unwrap_or_else(|e| panic!("{test}: the capability probe failed: {e}"));
    if missing.is_empty() {
        return false;
    }
    eprintln!("{}", message(test, &missing, why));
    true
}

/// The skip line for `test`, which lacks `missing`.
fn message(test: &str, missing: &[Cap], why: &str) -> String {
    format!(
        "SKIPPED {test}: needs {} ({why})",
        crate::caps::names(missing)
    )
}

/// libtest's name for the test whose body calls this: `type_name` of a
/// function item declared there is `crate::module::test::f` (with
/// `::{{closure}}` for each closure around it); without the crate, the
/// closures and the item, that is `module::test`.
#[doc(hidden)]
pub fn test_name(item_path: &'static str) -> &'static str {
    let mut path = item_path.rsplit_once("::").map_or(item_path, |(p, _)| p);
    while let Some(p) = path.strip_suffix("::{{closure}}") {
        path = p;
    }
    path.split_once("::").map_or(path, |(_, rest)| rest)
}

/// Returns from the calling test, after printing
/// `SKIPPED <test>: needs CAP_... (<why>)`, when the process lacks any of
/// the capabilities `needs` (a `&[Cap]`); does nothing otherwise.
///
/// `skip_unless!(needs, why)` returns `()`; `skip_unless!(needs, why, value)`
/// returns `value` (for tests that return a `Result`).
///
/// ```
/// use pktio_host::caps::Cap;
/// # fn a_test() {
/// pktio_host::skip_unless!(&[Cap::NET_RAW], "an AF_PACKET socket");
/// // Runs only with CAP_NET_RAW; any error below fails the test.
/// # }
/// ```
#[macro_export]
macro_rules! skip_unless {
    ($needs:expr, $why:expr $(,)?) => {
        $crate::skip_unless!($needs, $why, ())
    };
    ($needs:expr, $why:expr, $ret:expr $(,)?) => {{
        fn __pktio_skip_here() {}
        let test = $crate::skip::test_name(::std::any::type_name_of_val(&__pktio_skip_here));
        if $crate::skip::lacks(test, $needs, $why) {
            return $ret;
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_test_what_is_missing_and_why() {
        assert_eq!(
            message(
                "xdp::tests::t",
                &[Cap::NET_RAW, Cap::BPF],
                "an AF_XDP socket"
            ),
            "SKIPPED xdp::tests::t: needs CAP_NET_RAW, CAP_BPF (an AF_XDP socket)"
        );
    }

    #[test]
    fn the_test_name_is_libtests() {
        assert_eq!(test_name("pktio::xdp::tests::t::f"), "xdp::tests::t");
        assert_eq!(
            test_name("pktio::xdp::tests::t::{{closure}}::{{closure}}::f"),
            "xdp::tests::t"
        );
        assert_eq!(test_name("lab::t::f"), "t");
    }

    fn skipped(needs: &[Cap]) -> bool {
        crate::skip_unless!(needs, "the test of the macro", true);
        false
    }

    #[test]
    fn the_macro_returns_exactly_when_a_capability_is_missing() {
        let all = [Cap::NET_ADMIN, Cap::NET_RAW, Cap::SYS_ADMIN, Cap::BPF];
        assert!(!skipped(&[]));
        assert_eq!(
            skipped(&all),
            !crate::caps::missing(&all).unwrap().is_empty()
        );
    }
}
