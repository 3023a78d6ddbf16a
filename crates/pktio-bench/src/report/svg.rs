//! The report as a self-contained SVG grouped bar chart.

use std::fmt::Write as _;

use super::cells::{Cell, Report};
use super::stats::fmt_num;

impl Report {
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

#[cfg(test)]
mod tests {
    use super::super::cells::fixtures::*;
    use super::*;

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
