//! The report's data: labelled [`Cell`]s of samples, the [`Environment`]
//! they were measured in, and the [`Report`] that holds them (and its
//! JSON).

use super::stats::Stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// The labels of a cell, in order (for example `[("engine", "epoll"), ("conns", "8")]`).
///
/// Serialised as a JSON object that keeps the order.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    /// Builds labels from `(key, value)` pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Labels(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// These labels with `key` set to `value` (replaced in place, or appended).
    pub fn with(&self, key: &str, value: &str) -> Labels {
        let mut l = self.clone();
        match l.0.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value.to_string(),
            None => l.0.push((key.to_string(), value.to_string())),
        }
        l
    }

    /// The values of `keys`, joined with ", " (missing keys are skipped).
    pub fn join(&self, keys: &[&str]) -> String {
        keys.iter()
            .filter_map(|k| self.get(k))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One measured quantity for one combination of labels, with every run's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// What was measured (row/group labels).
    pub labels: Labels,
    /// The metric's name, e.g. `throughput`.
    pub metric: String,
    /// The metric's unit, e.g. `Gbit/s`.
    pub unit: String,
    /// One value per run.
    pub samples: Vec<f64>,
    /// The figure is a lower bound: the source, not the measured side,
    /// limited it (the measured side took ≥ 99 % of what was offered). The
    /// table prints it as `≥ x` and gives it no ratio.
    pub source_bound: bool,
}

impl Cell {
    /// A cell with the given labels, metric, unit and samples.
    pub fn new(labels: Labels, metric: &str, unit: &str, samples: Vec<f64>) -> Self {
        Cell {
            labels,
            metric: metric.to_string(),
            unit: unit.to_string(),
            samples,
            source_bound: false,
        }
    }

    /// Marks the cell source-bound (see [`Cell::source_bound`]).
    pub fn with_source_bound(mut self, bound: bool) -> Self {
        self.source_bound = bound;
        self
    }

    /// `median (min–max)`, or `≥ median (min–max)` when source-bound.
    pub fn display(&self) -> String {
        match self.stats() {
            None => "–".to_string(),
            Some(s) if self.source_bound => format!("≥ {}", s.display()),
            Some(s) => s.display(),
        }
    }

    /// Median, minimum and maximum of the samples (`None` when there is none).
    pub fn stats(&self) -> Option<Stats> {
        Stats::of(&self.samples)
    }

    /// The column heading of this cell's metric: `metric (unit)`.
    pub fn heading(&self) -> String {
        if self.unit.is_empty() {
            self.metric.clone()
        } else {
            format!("{} ({})", self.metric, self.unit)
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.stats();
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("labels", &self.labels)?;
        m.serialize_entry("metric", &self.metric)?;
        m.serialize_entry("unit", &self.unit)?;
        m.serialize_entry("samples", &self.samples)?;
        m.serialize_entry("median", &st.map(|s| s.median))?;
        m.serialize_entry("min", &st.map(|s| s.min))?;
        m.serialize_entry("max", &st.map(|s| s.max))?;
        m.serialize_entry("source_bound", &self.source_bound)?;
        m.end()
    }
}

/// Where and how the numbers were measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    /// `uname -r`.
    pub kernel: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Cores used by each side, e.g. `{"receiver": [1], "sender": [0]}`.
    pub cores: BTreeMap<String, Vec<usize>>,
    /// Anything else worth knowing: mode, attach, batch, bundles …
    pub extra: Vec<(String, String)>,
}

impl Environment {
    /// Reads the kernel release (`uname(2)`) and the CPU count (`sched_getaffinity(2)`).
    pub fn detect() -> Self {
        let uts = rustix::system::uname();
        Environment {
            kernel: uts.release().to_string_lossy().into_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cores: BTreeMap::new(),
            extra: Vec::new(),
        }
    }

    /// Adds a free-form key/value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.extra.push((key.to_string(), value.into()));
    }

    /// One line: `kernel 6.18.44, 2 CPUs, receiver on CPU 1, sender on CPU 0, mode=…`.
    pub fn summary(&self) -> String {
        let mut s = format!("kernel {}, {} CPUs", self.kernel, self.cpus);
        for (side, cores) in &self.cores {
            let list: Vec<String> = cores.iter().map(|c| c.to_string()).collect();
            let _ = write!(s, ", {side} on CPU {}", list.join(","));
        }
        for (k, v) in &self.extra {
            let _ = write!(s, ", {k}={v}");
        }
        s
    }
}

/// A whole benchmark result: what, where, the cells and notes.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Title, e.g. `TCP receive, lab veth`.
    pub title: String,
    /// Where it was measured.
    pub environment: Environment,
    /// The label keys that make up a row, in column order.
    pub row_keys: Vec<String>,
    /// The measurements.
    pub cells: Vec<Cell>,
    /// Free-form remarks (unsupported engines, warnings).
    pub notes: Vec<String>,
    /// The traffic generator engines used and the ones refused (benchmarks
    /// that generate traffic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generators: Option<serde_json::Value>,
}

impl Report {
    /// An empty report.
    pub fn new(title: &str, environment: Environment, row_keys: &[&str]) -> Self {
        Report {
            title: title.to_string(),
            environment,
            row_keys: row_keys.iter().map(|s| s.to_string()).collect(),
            cells: Vec::new(),
            notes: Vec::new(),
            generators: None,
        }
    }

    /// Metric headings in order of first appearance.
    pub(super) fn metrics(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in &self.cells {
            if !out.iter().any(|(m, _)| *m == c.metric) {
                out.push((c.metric.clone(), c.heading()));
            }
        }
        out
    }

    /// Pretty JSON of the whole report (cells carry their median/min/max),
    /// schema [`BENCH`](super::schema::BENCH).
    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and maps cannot fail.
        super::schema::document(super::schema::BENCH, self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
pub(super) mod fixtures {
    //! Cells and a report the tests of every part render.
    use super::*;

    pub fn cell(engine: &str, conns: &str, metric: &str, unit: &str, samples: &[f64]) -> Cell {
        Cell::new(
            Labels::new([("engine", engine), ("conns", conns)]),
            metric,
            unit,
            samples.to_vec(),
        )
    }

    pub fn sample_report() -> Report {
        let mut env = Environment {
            kernel: "6.18.0".into(),
            cpus: 2,
            ..Default::default()
        };
        env.cores.insert("receiver".into(), vec![1]);
        env.set("bundle", "yes");
        let mut r = Report::new("TCP receive", env, &["engine", "conns"]);
        r.cells = vec![
            cell("epoll", "1", "throughput", "Gbit/s", &[10.0, 12.0, 11.0]),
            cell("epoll", "1", "cpu", "s/GB", &[0.2, 0.2, 0.2]),
            cell("uring", "1", "throughput", "Gbit/s", &[13.0, 14.0, 12.0]),
            cell("uring", "1", "cpu", "s/GB", &[0.1, 0.3, 0.2]),
            cell("epoll", "8", "throughput", "Gbit/s", &[8.0]),
            cell("uring", "8", "throughput", "Gbit/s", &[]),
        ];
        r.notes.push("uring-zc: unsupported on veth".into());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;

    #[test]
    fn json_keeps_label_order_and_statistics() {
        let v: serde_json::Value = serde_json::from_str(&sample_report().to_json()).unwrap();
        assert_eq!(v["schema"], "pktio.bench/1");
        let c = &v["cells"][0];
        assert_eq!(c["labels"]["engine"], "epoll");
        assert_eq!(c["median"], 11.0);
        assert_eq!(c["min"], 10.0);
        assert_eq!(c["max"], 12.0);
        assert_eq!(v["cells"][5]["median"], serde_json::Value::Null);
        assert_eq!(v["environment"]["cores"]["receiver"][0], 1);
        let text = sample_report().to_json();
        assert!(text.find("\"engine\"").unwrap() < text.find("\"conns\"").unwrap());
    }
}
