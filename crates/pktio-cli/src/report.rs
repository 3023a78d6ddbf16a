//! Benchmark results: statistics, the run's environment, and rendering.
//!
//! Shared by `pktio bench` (packets) and `pktio bench tcp`. A [`Cell`] is one
//! measured quantity for one combination of labels (for example engine =
//! `epoll`, conns = `8`, write = `64 KiB`, metric = `Gbit/s`) with the value of
//! every run. A [`Report`] holds the cells, the [`Environment`] they were
//! measured in and free-form notes, and renders as an aligned text table,
//! a Markdown table, JSON, or a self-contained SVG grouped bar chart.
//!
//! Statistics are pure functions: the median of an even number of samples is
//! the mean of the middle two; NaN samples are ignored.
//! Nothing here does I/O except [`Environment::detect`].

// Parts are used only by `pktio bench`, which the integrator wires in.
#![allow(dead_code)]

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

/// For each cell, the ratio of its median to the median of the cell with the
/// same metric and the same labels except `key` = `baseline` (`None` when that
/// cell is missing or empty). The baseline cell itself gets 1.0.
pub fn ratios_to_baseline(cells: &[Cell], key: &str, baseline: &str) -> Vec<Option<f64>> {
    cells
        .iter()
        .map(|c| {
            let want = c.labels.with(key, baseline);
            let base = cells
                .iter()
                .find(|b| b.metric == c.metric && b.labels == want)?;
            // A lower bound compares with nothing.
            if c.source_bound || base.source_bound {
                return None;
            }
            ratio(c.stats()?.median, base.stats()?.median)
        })
        .collect()
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

/// A table: headings and rows of strings (no layout yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column headings.
    pub headings: Vec<String>,
    /// Rows, each as long as `headings`.
    pub rows: Vec<Vec<String>>,
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
    fn metrics(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in &self.cells {
            if !out.iter().any(|(m, _)| *m == c.metric) {
                out.push((c.metric.clone(), c.heading()));
            }
        }
        out
    }

    /// One row per combination of the `row_keys` labels (in order of first
    /// appearance), one column per metric showing `median (min–max)`.
    /// With `baseline = Some((key, value))`, each metric also gets an
    /// `× value` column: the ratio of medians to the row with `key = value`.
    pub fn table(&self, baseline: Option<(&str, &str)>) -> Table {
        let keys: Vec<&str> = self.row_keys.iter().map(String::as_str).collect();
        let metrics = self.metrics();
        let ratios = baseline.map(|(k, v)| ratios_to_baseline(&self.cells, k, v));
        let mut headings: Vec<String> = self.row_keys.clone();
        for (_, h) in &metrics {
            headings.push(h.clone());
            if let Some((_, v)) = baseline {
                headings.push(format!("× {v}"));
            }
        }
        let mut row_ids: Vec<Vec<String>> = Vec::new();
        for c in &self.cells {
            let id: Vec<String> = keys
                .iter()
                .map(|k| c.labels.get(k).unwrap_or("").to_string())
                .collect();
            if !row_ids.contains(&id) {
                row_ids.push(id);
            }
        }
        let rows = row_ids
            .into_iter()
            .map(|id| {
                let mut row = id.clone();
                for (m, _) in &metrics {
                    let found = self.cells.iter().enumerate().find(|(_, c)| {
                        c.metric == *m
                            && keys
                                .iter()
                                .zip(&id)
                                .all(|(k, v)| c.labels.get(k).unwrap_or("") == v)
                    });
                    let (text, r) = match found {
                        Some((i, c)) => (c.display(), ratios.as_ref().and_then(|r| r[i])),
                        None => ("–".to_string(), None),
                    };
                    row.push(text);
                    if baseline.is_some() {
                        row.push(r.map_or("–".to_string(), |x| format!("{x:.2}")));
                    }
                }
                row
            })
            .collect();
        Table { headings, rows }
    }

    /// The aligned text table, preceded by the title and environment and
    /// followed by the notes.
    pub fn to_text(&self, baseline: Option<(&str, &str)>) -> String {
        let mut s = format!("{}\n{}\n\n", self.title, self.environment.summary());
        s.push_str(&self.table(baseline).to_text());
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }

    /// The same as a Markdown section (a table plus an environment line and notes).
    pub fn to_markdown(&self, baseline: Option<(&str, &str)>) -> String {
        let mut s = format!(
            "### {}\n\n{}\n\n",
            self.title,
            md_escape(&self.environment.summary())
        );
        s.push_str(&self.table(baseline).to_markdown());
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                let _ = writeln!(s, "- {}", md_escape(n));
            }
        }
        s
    }

    /// Pretty JSON of the whole report (cells carry their median/min/max).
    pub fn to_json(&self) -> String {
        // Serialising plain strings, numbers and maps cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A grouped bar chart of `metric` as a self-contained SVG document.
    ///
    /// Bars are grouped by the values of `group_keys` (one cluster per
    /// combination) and coloured by `color_key`; each bar is labelled with its
    /// median and carries a min–max whisker. One `<rect class="bar">` per cell.
    pub fn to_svg(&self, metric: &str, group_keys: &[&str], color_key: &str) -> String {
        let cells: Vec<&Cell> = self.cells.iter().filter(|c| c.metric == metric).collect();
        let unit = cells.first().map_or("", |c| c.unit.as_str());
        let mut groups: Vec<String> = Vec::new();
        let mut colors: Vec<String> = Vec::new();
        for c in &cells {
            let g = c.labels.join(group_keys);
            if !groups.contains(&g) {
                groups.push(g);
            }
            let k = c.labels.get(color_key).unwrap_or("").to_string();
            if !colors.contains(&k) {
                colors.push(k);
            }
        }
        let top = cells
            .iter()
            .filter_map(|c| c.stats())
            .map(|s| s.max.max(s.median))
            .fold(0.0f64, f64::max);
        let axis_max = nice_ceiling(top);
        let (bar_w, gap, pad_l, pad_r, pad_t) = (28.0, 26.0, 70.0, 20.0, 60.0);
        let plot_h = 280.0;
        let group_w = bar_w * colors.len().max(1) as f64 + gap;
        let width = (pad_l + pad_r + group_w * groups.len().max(1) as f64).max(420.0);
        // Group labels take one line per key; the environment is wrapped below them.
        let footer = wrap(
            &self.environment.summary(),
            ((width - pad_l) / 6.0) as usize,
        );
        let labels_h = 14.0 * group_keys.len().max(1) as f64 + 16.0;
        let height = pad_t + plot_h + labels_h + 13.0 * footer.len() as f64 + 8.0;
        let y = |v: f64| pad_t + plot_h - (v / axis_max) * plot_h;

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="white"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.0}" y="22" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
            width / 2.0,
            xml_escape(&format!("{} — {}", self.title, metric))
        );
        // Axis, ticks and grid.
        for i in 0..=5 {
            let v = axis_max * f64::from(i) / 5.0;
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{pad_l}" y1="{yy:.1}" x2="{:.0}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"##,
                width - pad_r,
                pad_l - 6.0,
                yy + 4.0,
                xml_escape(&fmt_tick(v))
            );
        }
        let _ = writeln!(
            s,
            r#"<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{:.0}" stroke="black"/>"#,
            pad_t + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(16 {:.0}) rotate(-90)" text-anchor="middle">{}</text>"#,
            pad_t + plot_h / 2.0,
            xml_escape(&format!("{metric} ({unit})"))
        );
        // Bars.
        for (gi, g) in groups.iter().enumerate() {
            let gx = pad_l + gap / 2.0 + group_w * gi as f64;
            // One line per grouping key: "conns 8" / "write 64 KiB".
            let first = cells.iter().find(|c| c.labels.join(group_keys) == *g);
            let cx = gx + (group_w - gap) / 2.0;
            for (li, k) in group_keys.iter().enumerate() {
                let v = first.and_then(|c| c.labels.get(k)).unwrap_or("");
                let _ = writeln!(
                    s,
                    r#"<text x="{cx:.1}" y="{:.0}" text-anchor="middle">{}</text>"#,
                    pad_t + plot_h + 18.0 + 14.0 * li as f64,
                    xml_escape(&format!("{k} {v}"))
                );
            }
            for c in cells.iter().filter(|c| c.labels.join(group_keys) == *g) {
                let ci = colors
                    .iter()
                    .position(|k| Some(k.as_str()) == c.labels.get(color_key).or(Some("")))
                    .unwrap_or(0);
                let x = gx + bar_w * ci as f64;
                let Some(st) = c.stats() else { continue };
                let (top_y, base_y) = (y(st.median), y(0.0));
                let _ = writeln!(
                    s,
                    r#"<rect class="bar" x="{x:.1}" y="{top_y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                    bar_w - 2.0,
                    (base_y - top_y).max(0.0),
                    PALETTE[ci % PALETTE.len()],
                    xml_escape(&format!(
                        "{}: {} {}",
                        c.labels.join(&label_keys(c)),
                        st.display(),
                        c.unit
                    ))
                );
                if st.max > st.min {
                    let cx = x + (bar_w - 2.0) / 2.0;
                    let _ = writeln!(
                        s,
                        r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="black"/>"#,
                        y(st.min),
                        y(st.max)
                    );
                }
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                    x + (bar_w - 2.0) / 2.0,
                    y(st.max.max(st.median)) - 4.0,
                    xml_escape(&fmt_num(st.median))
                );
            }
        }
        // Legend.
        let mut lx = pad_l;
        for (ci, k) in colors.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.0}" y="34" width="12" height="12" fill="{}"/><text x="{:.0}" y="44">{}</text>"#,
                PALETTE[ci % PALETTE.len()],
                lx + 16.0,
                xml_escape(&format!("{color_key}={k}"))
            );
            lx += 26.0 + 7.0 * (color_key.len() + k.len()) as f64;
        }
        for (i, line) in footer.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text x="{pad_l}" y="{:.0}" font-size="10" fill="#555">{}</text>"##,
                pad_t + plot_h + labels_h + 10.0 + 13.0 * i as f64,
                xml_escape(line)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn label_keys(c: &Cell) -> Vec<&str> {
    c.labels.0.iter().map(|(k, _)| k.as_str()).collect()
}

/// Axis ticks: like [`fmt_num`] without trailing zeros (`5`, `2.5`, `0.25`).
fn fmt_tick(x: f64) -> String {
    let s = fmt_num(x);
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Splits `text` at spaces into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for w in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Colour-blind-friendly palette (Okabe–Ito).
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ `x` (1 for x ≤ 0).
fn nice_ceiling(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

impl Table {
    /// Columns padded to their widest entry (by chars), text left- and numbers right-aligned,
    /// a dashed rule under the headings.
    pub fn to_text(&self) -> String {
        let ncol = self.headings.len();
        let mut w = vec![0usize; ncol];
        for row in std::iter::once(&self.headings).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(ncol) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..ncol)
            .map(|i| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|r| {
                        r.get(i)
                            .and_then(|c| c.chars().next())
                            .is_some_and(|ch| ch.is_ascii_digit() || ch == '–' || ch == '-')
                    })
            })
            .collect();
        let line = |row: &[String], s: &mut String| {
            let cells: Vec<String> = (0..ncol)
                .map(|i| {
                    let c = row.get(i).map_or("", String::as_str);
                    let pad = w[i] - c.chars().count();
                    if numeric[i] {
                        format!("{}{c}", " ".repeat(pad))
                    } else {
                        format!("{c}{}", " ".repeat(pad))
                    }
                })
                .collect();
            let _ = writeln!(s, "{}", cells.join("  ").trim_end());
        };
        let mut s = String::new();
        line(&self.headings, &mut s);
        let rule: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
        let _ = writeln!(s, "{}", rule.join("  "));
        for r in &self.rows {
            line(r, &mut s);
        }
        s
    }

    /// A GitHub-flavoured Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let esc: Vec<String> = self.headings.iter().map(|h| md_escape(h)).collect();
        let _ = writeln!(s, "| {} |", esc.join(" | "));
        let _ = writeln!(s, "|{}|", vec!["---"; self.headings.len()].join("|"));
        for r in &self.rows {
            let esc: Vec<String> = r.iter().map(|c| md_escape(c)).collect();
            let _ = writeln!(s, "| {} |", esc.join(" | "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(engine: &str, conns: &str, metric: &str, unit: &str, samples: &[f64]) -> Cell {
        Cell::new(
            Labels::new([("engine", engine), ("conns", conns)]),
            metric,
            unit,
            samples.to_vec(),
        )
    }

    fn sample_report() -> Report {
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
    fn ratios_compare_medians_with_the_baseline_row() {
        let r = sample_report();
        let q = ratios_to_baseline(&r.cells, "engine", "epoll");
        assert_eq!(q[0], Some(1.0));
        assert_eq!(q[2], Some(13.0 / 11.0));
        assert_eq!(q[3], Some(1.0));
        assert_eq!(q[5], None, "empty cell has no ratio");
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
    }

    #[test]
    fn table_has_one_row_per_label_combination_and_metrics_side_by_side() {
        let t = sample_report().table(Some(("engine", "epoll")));
        assert_eq!(
            t.headings,
            [
                "engine",
                "conns",
                "throughput (Gbit/s)",
                "× epoll",
                "cpu (s/GB)",
                "× epoll"
            ]
        );
        assert_eq!(t.rows.len(), 4);
        assert_eq!(
            t.rows[0],
            ["epoll", "1", "11.0 (10.0–12.0)", "1.00", "0.200", "1.00"]
        );
        assert_eq!(t.rows[1][2], "13.0 (12.0–14.0)");
        assert_eq!(t.rows[1][3], "1.18");
        assert_eq!(t.rows[3], ["uring", "8", "–", "–", "–", "–"]);
    }

    #[test]
    fn text_table_columns_line_up() {
        let text = sample_report().table(None).to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 4);
        // The rule's dashes line up with the widest entry of each column.
        let rule = lines[1];
        let widths: Vec<usize> = rule.split("  ").map(|d| d.chars().count()).collect();
        assert_eq!(widths, [6, 5, 19, 19]);
        // Numbers are right-aligned: every row ends at the same column.
        let ends: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(ends.iter().skip(1).all(|e| *e == ends[1]), "{text}");
        assert_eq!(
            lines[0],
            "engine  conns  throughput (Gbit/s)           cpu (s/GB)"
        );
        assert_eq!(
            lines[2],
            "epoll       1     11.0 (10.0–12.0)                0.200"
        );
    }

    #[test]
    fn markdown_table_has_header_rule_and_rows() {
        let md = sample_report().to_markdown(None);
        assert!(md.starts_with("### TCP receive\n"));
        assert!(md.contains(
            "| engine | conns | throughput (Gbit/s) | cpu (s/GB) |\n|---|---|---|---|\n"
        ));
        assert!(md.contains("| epoll | 1 | 11.0 (10.0–12.0) | 0.200 |"));
        assert!(md.contains("- uring-zc: unsupported on veth"));
    }

    #[test]
    fn json_keeps_label_order_and_statistics() {
        let v: serde_json::Value = serde_json::from_str(&sample_report().to_json()).unwrap();
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

    #[test]
    fn svg_is_well_formed_with_one_bar_per_cell() {
        let mut r = sample_report();
        r.title = "a <b> & \"c\"".into();
        let svg = r.to_svg("throughput", &["conns"], "engine");
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let bars = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("bar"))
            .count();
        // Four throughput cells, one of them without samples (no bar).
        assert_eq!(bars, 3);
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains(&"engine=epoll") && texts.contains(&"engine=uring"));
        assert!(texts.contains(&"throughput (Gbit/s)"));
        assert!(texts.contains(&"11.0"), "value label: {texts:?}");
        assert!(texts.contains(&"conns 8"), "group label: {texts:?}");
    }

    #[test]
    fn ticks_drop_trailing_zeros_and_long_text_wraps() {
        assert_eq!(fmt_tick(5.0), "5");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(150.0), "150");
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(wrap("averyverylongword x", 4), ["averyverylongword", "x"]);
    }

    #[test]
    fn nice_ceiling_rounds_up_to_a_readable_axis() {
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(1.7), 2.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
