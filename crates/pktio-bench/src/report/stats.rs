//! The statistics of a benchmark's samples: median, min–max, ratios to a
//! baseline row, and the marks a row of the packet benchmark gets from
//! them (source-bound, held back). Pure functions, no I/O: the median of
//! an even number of samples is the mean of the middle two; NaN samples
//! are ignored.

use serde::Serialize;

/// Median, minimum, maximum and count of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples (NaN excluded).
    pub n: usize,
}

impl Stats {
    /// Statistics of `samples`, ignoring NaN; `None` when nothing is left.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Stats {
            median: median_sorted(&v),
            min: v[0],
            max: v[v.len() - 1],
            n: v.len(),
        })
    }

    /// `median (min–max)` with three significant digits.
    pub fn display(&self) -> String {
        if self.n == 1 || self.min == self.max {
            fmt_num(self.median)
        } else {
            format!(
                "{} ({}–{})",
                fmt_num(self.median),
                fmt_num(self.min),
                fmt_num(self.max)
            )
        }
    }
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of `samples` (NaN ignored; mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    Stats::of(samples).map(|s| s.median)
}

/// `value / baseline`, or `None` when the baseline is zero, negative or not finite.
pub fn ratio(value: f64, baseline: f64) -> Option<f64> {
    if baseline.is_finite() && baseline > 0.0 && value.is_finite() {
        Some(value / baseline)
    } else {
        None
    }
}

/// Formats a number with about three significant digits (no exponent for ordinary sizes).
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_string();
    }
    let a = x.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.001 {
        // Three significant digits below 1.
        let decimals = (-a.log10().floor()) as usize + 2;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.2e}")
    }
}

/// Whether most runs of a row saw the flag (the receiver holding the
/// generator back): then its offered rate is the receiver's, not a bound
/// set by the source.
pub fn mostly(flags: &[bool]) -> bool {
    2 * flags.iter().filter(|&&f| f).count() > flags.len()
}

/// Whether a row is source-bound: it took at least 99 % of what the
/// generator offered (medians).
pub fn source_bound(delivered: &[f64], offered: &[f64]) -> bool {
    match (median(delivered), median(offered)) {
        (Some(d), Some(o)) if o > 0.0 => d >= 0.99 * o,
        _ => false,
    }
}

/// Whether a row's rate is a lower bound set by the generator: it took
/// ≥ 99 % of what was offered ([`source_bound`]) and the receiver did not
/// hold the generator back in most runs ([`mostly`]; then the offered rate
/// is the receiver's own).
pub fn bound_by_source(delivered: &[f64], offered: &[f64], held: &[bool]) -> bool {
    source_bound(delivered, offered) && !mostly(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn stats_min_max_and_display() {
        let s = Stats::of(&[2.0, 9.5, 1.25, 4.0]).unwrap();
        assert_eq!((s.min, s.max, s.median, s.n), (1.25, 9.5, 3.0, 4));
        assert_eq!(s.display(), "3.00 (1.25–9.50)");
        assert_eq!(Stats::of(&[7.0]).unwrap().display(), "7.00");
    }

    #[test]
    fn fmt_num_keeps_three_significant_digits() {
        assert_eq!(fmt_num(1234.4), "1234");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(1.2345), "1.23");
        assert_eq!(fmt_num(0.12345), "0.123");
        assert_eq!(fmt_num(0.0012345), "0.00123");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(f64::NAN), "–");
    }

    #[test]
    fn source_bound_compares_medians_at_ninety_nine_percent() {
        assert!(source_bound(&[9.9, 9.95, 10.0], &[10.0, 10.0, 10.0]));
        assert!(!source_bound(&[9.8, 9.85, 9.89], &[10.0, 10.0, 10.0]));
        // Nothing offered, or no figure: not bound.
        assert!(!source_bound(&[5.0], &[]));
        assert!(!source_bound(&[], &[5.0]));
        assert!(!source_bound(&[5.0], &[0.0]));
        // Medians, not means: one slow run does not unmark the row.
        assert!(source_bound(&[1.0, 10.0, 10.0], &[10.0, 10.0, 10.0]));
    }

    #[test]
    fn held_back_in_most_runs_is_not_source_bound() {
        assert!(!mostly(&[]));
        assert!(!mostly(&[true, false]));
        assert!(mostly(&[true, true, false]));
        let (d, o) = ([10.0, 10.0, 10.0], [10.0, 10.0, 10.0]);
        assert!(bound_by_source(&d, &o, &[false, true, false]));
        assert!(!bound_by_source(&d, &o, &[true, true, false]));
    }
}
