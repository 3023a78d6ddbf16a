//! Value parsers for command-line flags, checked when clap parses them: a
//! bad value ends the run with clap's usage error (exit 2) and a message
//! that names the flag and the valid range, before anything is set up.
//!
//! Pure: no I/O, unit-tested below.

use clap::builder::TypedValueParser;
use pktio_bench::gen::Engine;

/// The longest duration a flag accepts: one year. Longer runs are not
/// benchmarks, and `Instant + Duration` overflows somewhere past 2^63 s.
pub const MAX_SECONDS: f64 = 31_536_000.0;

/// The shortest duration a flag accepts: one millisecond (shorter values
/// round to nothing in the timers that use them).
pub const MIN_SECONDS: f64 = 0.001;

/// Parses a number of seconds (`10`, `0.5`, `1e3`) between
/// [`MIN_SECONDS`] and [`MAX_SECONDS`]: finite, positive, at most a year.
///
/// # Errors
/// A message naming the valid range for anything else: not a number, NaN,
/// infinite, zero, negative, shorter than a millisecond, longer than a year.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let range = format!("a number of seconds from {MIN_SECONDS} to {MAX_SECONDS:.0} (one year)");
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; expected {range}"))?;
    if !v.is_finite() {
        return Err(format!("{s} is not finite; expected {range}"));
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&v) {
        return Err(format!("{s} is out of range; expected {range}"));
    }
    Ok(v)
}

/// The highest rate a flag accepts, in frames per second.
pub const MAX_RATE: f64 = 1e9;

/// Parses a rate in frames per second, from 1 to [`MAX_RATE`] (below one
/// frame a second, pacing arithmetic would overflow its timers).
///
/// # Errors
/// A message naming the valid range for anything else.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let range = format!("frames per second from 1 to {MAX_RATE:e}");
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; expected {range}"))?;
    if !(v.is_finite() && (1.0..=MAX_RATE).contains(&v)) {
        return Err(format!("{s} is out of range; expected {range}"));
    }
    Ok(v)
}

/// Parses a whole number from `lo` to `hi` (inclusive).
///
/// # Errors
/// A message naming the valid range for anything else: not a whole number
/// (`nan`, `1.5`, `abc`), negative, or outside `lo..=hi` — including values
/// too large for a `u32`, which must not wrap.
pub fn parse_u32_in(s: &str, lo: u32, hi: u32) -> Result<u32, String> {
    let range = format!("a whole number from {lo} to {hi}");
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a whole number; expected {range}"));
    }
    // Any other failure (negative, or too long for a u32) is out of range.
    t.parse::<u32>()
        .ok()
        .filter(|v| (lo..=hi).contains(v))
        .ok_or_else(|| format!("{s} is out of range; expected {range}"))
}

/// Parses a finite number from `lo` to `hi` (inclusive); `what` names the
/// unit in the message ("minutes", "seconds").
///
/// # Errors
/// A message naming the valid range for anything else: not a number, NaN,
/// infinite, or outside `lo..=hi`.
pub fn parse_f64_in(s: &str, lo: f64, hi: f64, what: &str) -> Result<f64, String> {
    let range = format!("{what} from {lo} to {hi}");
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; expected {range}"))?;
    if !(v.is_finite() && (lo..=hi).contains(&v)) {
        return Err(format!("{s} is out of range; expected {range}"));
    }
    Ok(v)
}

/// Parses a CPU number that exists on this host (`0..` the number of CPUs
/// this process may use), so that a pin cannot fail after a lab was built
/// or a measurement ran.
///
/// # Errors
/// A message naming this host's CPUs for anything else.
pub fn parse_cpu(s: &str) -> Result<usize, String> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    parse_cpu_of(s, n)
}

fn parse_cpu_of(s: &str, cpus: usize) -> Result<usize, String> {
    let hi = u32::try_from(cpus.saturating_sub(1)).unwrap_or(u32::MAX);
    parse_u32_in(s, 0, u32::MAX)
        .ok()
        .map(|v| v as usize)
        .filter(|&v| v < cpus)
        .ok_or_else(|| {
            format!("CPU {s} does not exist: this host has CPUs 0 to {hi}; expected a whole number from 0 to {hi}")
        })
}

/// The CPUs of a `--cpus` flag, in the order given (a CPU may repeat):
/// the i-th queue's thread runs on the i-th CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Value parser of `--cpus`: CPU ids and ranges (`2,3`, `0-1`, `3,1`), in
/// the order given, each one this process may run on.
///
/// # Errors
/// A message for a bad id or range, or a CPU outside this process's
/// affinity (naming the allowed ones).
pub fn parse_cpus(s: &str) -> Result<CpuList, String> {
    let allowed = pktio_host::cpu::allowed_cpus()
        .map_err(|e| format!("cannot read the CPUs this process may run on: {e}"))?;
    parse_cpus_of(s, &allowed)
}

fn parse_cpus_of(s: &str, allowed: &[usize]) -> Result<CpuList, String> {
    let ids = pktio_host::idlist::parse_ids(s, "CPU", "a list such as 0,2-3")?;
    let cpus: Vec<usize> = ids.into_iter().map(|c| c as usize).collect();
    if let Some(c) = cpus.iter().find(|&&c| c >= pktio_host::cpu::MAX_CPU) {
        return Err(format!(
            "bad CPU {c} in {s:?}: CPU ids stop below {}",
            pktio_host::cpu::MAX_CPU
        ));
    }
    if let Some(bad) = cpus.iter().find(|c| !allowed.contains(c)) {
        let allowed: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        return Err(format!(
            "CPU {bad} is not one this process may run on (allowed: {})",
            allowed.join(",")
        ));
    }
    Ok(CpuList(cpus))
}

/// The CPU of each of `queues` queues from a `--cpus` list: the i-th
/// queue on the i-th CPU, round robin when the list is shorter.
///
/// # Errors
/// More CPUs than queues (a CPU would have nothing to run), or none.
pub fn cpus_for_queues(cpus: &[usize], queues: usize) -> Result<Vec<usize>, String> {
    if cpus.len() > queues {
        return Err(format!(
            "--cpus lists {} CPUs for {queues} queue{}: give at most one CPU per queue (the i-th \
             queue runs on the i-th CPU, round robin when there are fewer)",
            cpus.len(),
            if queues == 1 { "" } else { "s" }
        ));
    }
    if cpus.is_empty() {
        return Err("--cpus names no CPU".to_string());
    }
    Ok((0..queues).map(|i| cpus[i % cpus.len()]).collect())
}

/// The smallest and largest AF_XDP ring (`--ring-size`).
pub const RING_SIZES: (u32, u32) = (64, 65_536);

/// Parses a ring size: a power of two from 64 to 65536.
///
/// # Errors
/// A message naming the valid values for anything else (0 included: it is
/// not "the default").
pub fn parse_ring_size(s: &str) -> Result<u32, String> {
    let (lo, hi) = RING_SIZES;
    let range = format!("a power of two from {lo} to {hi}");
    let v = parse_u32_in(s, lo, hi).map_err(|_| format!("{s:?} is not {range}"))?;
    if !v.is_power_of_two() {
        return Err(format!(
            "{v} is not a power of two: expected {range} (try {})",
            v.next_power_of_two()
        ));
    }
    Ok(v)
}

/// The parser of a flag that takes one of `values` (each with its help
/// line), by the name `name` gives it: what `#[arg(value_enum)]` does for
/// an enum of this crate, for the engines' enums of `pktio-bench` (which
/// know nothing of clap). Help and errors list the values as clap does.
pub fn one_of<T: Copy + Send + Sync + 'static>(
    values: &'static [(T, &'static str)],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser};
    let possible = values
        .iter()
        .map(move |&(v, help)| PossibleValue::new(name(v)).help(help));
    PossibleValuesParser::new(possible).try_map(move |s: String| {
        values
            .iter()
            .map(|&(v, _)| v)
            .find(|&v| name(v) == s)
            .ok_or("not one of the possible values")
    })
}

/// The values of a generator-engine flag (`--engine`, `--generator`),
/// with their help.
pub const ENGINE_VALUES: &[(Engine, &str)] = &[
    (
        Engine::Auto,
        "The fastest engine this host allows: live, then xsk, packet, raw",
    ),
    (
        Engine::Live,
        "BPF_PROG_RUN live frames (XDP_TX): the fastest source; kernel 5.18+, refused by some \
         kernel builds and seccomp policies",
    ),
    (
        Engine::Xsk,
        "AF_XDP transmit (frames built once in the UMEM, descriptors re-posted)",
    ),
    (
        Engine::Packet,
        "AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS)",
    ),
    (
        Engine::Raw,
        "A plain AF_PACKET socket, one send() per frame",
    ),
];

/// The parser of a generator-engine flag: one of [`Engine::ALL`] by name.
pub fn engine_flag() -> impl TypedValueParser<Value = Engine> {
    one_of(ENGINE_VALUES, Engine::name)
}

/// Ends the run with a usage error (exit 2, clap's format): for a
/// combination of flags that is refused before anything is opened.
pub fn usage_error(msg: impl std::fmt::Display) -> ! {
    clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{msg}\n")).exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_is_a_flag_value_in_ladder_order() {
        let named: Vec<Engine> = ENGINE_VALUES.iter().map(|&(e, _)| e).collect();
        assert_eq!(named, Engine::ALL);
    }

    #[test]
    fn cpus_of_this_host_only() {
        assert_eq!(parse_cpu_of("0", 2), Ok(0));
        assert_eq!(parse_cpu_of("1", 2), Ok(1));
        for bad in [
            "2",
            "9",
            "-1",
            "1e3",
            "nan",
            "",
            "x",
            "99999999999999999999",
        ] {
            let e = parse_cpu_of(bad, 2).unwrap_err();
            assert!(e.contains("CPUs 0 to 1"), "{bad}: {e}");
        }
    }

    #[test]
    fn ring_sizes_are_powers_of_two_in_range() {
        assert_eq!(parse_ring_size("64"), Ok(64));
        assert_eq!(parse_ring_size("65536"), Ok(65_536));
        for bad in ["0", "32", "1000", "131072", "-2048", "nan", "2k", ""] {
            let e = parse_ring_size(bad).unwrap_err();
            assert!(e.contains("power of two from 64 to 65536"), "{bad}: {e}");
        }
    }

    #[test]
    fn rates_from_one_to_a_billion() {
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert_eq!(parse_rate("1e9"), Ok(1e9));
        for bad in ["0", "0.5", "1e-300", "-1", "nan", "inf", "2e9", "fast", ""] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("from 1 to 1e9"), "{bad}: {e}");
        }
    }

    #[test]
    fn whole_numbers_in_range() {
        assert_eq!(parse_u32_in("0", 0, 10), Ok(0));
        assert_eq!(parse_u32_in(" 10 ", 0, 10), Ok(10));
        assert_eq!(parse_u32_in("4294967295", 0, u32::MAX), Ok(u32::MAX));
        for s in [
            "11",
            "4294967295",
            "4294967296",
            "-1",
            "99999999999999999999999999999999999999999",
        ] {
            let e = parse_u32_in(s, 0, 10).expect_err(s);
            assert!(
                e.contains("out of range; expected a whole number from 0 to 10"),
                "{s}: {e}"
            );
        }
        for s in ["nan", "inf", "1.5", "1e3", "", "ten"] {
            let e = parse_u32_in(s, 0, 10).expect_err(s);
            assert!(
                e.contains("expected a whole number from 0 to 10"),
                "{s}: {e}"
            );
        }
        assert!(parse_u32_in("4", 5, 10).is_err());
    }

    #[test]
    fn accepts_ordinary_durations() {
        for (s, v) in [
            ("10", 10.0),
            ("0.5", 0.5),
            ("1e3", 1000.0),
            (" 3 ", 3.0),
            ("0.001", 0.001),
            ("31536000", MAX_SECONDS),
        ] {
            assert_eq!(parse_seconds(s), Ok(v), "{s}");
        }
    }

    #[test]
    fn refuses_what_would_overflow_or_mean_nothing() {
        for s in [
            "1e19", "31536001", "1e-300", "0.0009", "0", "-0", "-1", "NaN", "nan", "inf", "-inf",
            "infinity", "", "ten", "1s", "0x10",
        ] {
            let e = parse_seconds(s).expect_err(s);
            assert!(e.contains("from 0.001 to 31536000"), "{s}: {e}");
        }
    }

    #[test]
    fn cpu_lists_keep_their_order_and_pair_with_queues() {
        let allowed = [0, 1, 2, 3];
        assert_eq!(
            parse_cpus_of("3,1-2,1", &allowed),
            Ok(CpuList(vec![3, 1, 2, 1]))
        );
        assert!(parse_cpus_of("x", &allowed)
            .unwrap_err()
            .contains("bad CPU"));
        assert!(parse_cpus_of("2-1", &allowed)
            .unwrap_err()
            .contains("empty CPU range"));
        assert!(parse_cpus_of("99999999", &allowed)
            .unwrap_err()
            .contains("bad CPU"));
        let e = parse_cpus_of("4", &allowed).unwrap_err();
        assert!(
            e.contains("CPU 4 is not one") && e.contains("0,1,2,3"),
            "{e}"
        );
        assert_eq!(cpus_for_queues(&[1, 0], 2), Ok(vec![1, 0]));
        assert_eq!(cpus_for_queues(&[1], 3), Ok(vec![1, 1, 1]));
        assert_eq!(cpus_for_queues(&[0, 1], 4), Ok(vec![0, 1, 0, 1]));
        let e = cpus_for_queues(&[0, 1, 0], 2).unwrap_err();
        assert!(e.contains("--cpus lists 3 CPUs for 2 queues"), "{e}");
    }
}
