//! The report as a table: one row per combination of the row labels, one
//! column per metric (and its ratio to a baseline row), laid out as
//! aligned text or Markdown.

use std::fmt::Write as _;

use super::cells::{Cell, Report};
use super::stats::ratio;

/// A table: headings and rows of strings (no layout yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column headings.
    pub headings: Vec<String>,
    /// Rows, each as long as `headings`.
    pub rows: Vec<Vec<String>>,
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

impl Report {
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
}

pub(super) fn md_escape(s: &str) -> String {
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
    use super::super::cells::fixtures::*;
    use super::super::cells::Labels;
    use super::*;

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
    fn a_source_bound_cell_shows_as_a_lower_bound_without_ratio() {
        let base = Cell::new(
            Labels::new([("backend", "v2")]),
            "Mpps",
            "Mpps",
            vec![1.0, 2.0, 3.0],
        );
        let bound = Cell::new(
            Labels::new([("backend", "xdp")]),
            "Mpps",
            "Mpps",
            vec![4.0, 4.0],
        )
        .with_source_bound(true);
        assert_eq!(bound.display(), "≥ 4.00");
        assert_eq!(base.display(), "2.00 (1.00–3.00)");
        let r = ratios_to_baseline(&[base, bound], "backend", "v2");
        assert_eq!(r, vec![Some(1.0), None]);
    }
}
