//! Output: a table for people (severity first, aligned columns, the meaning
//! and the fix on their own lines, each finding's id at the end of its row)
//! and JSON for tools, with the schema ids of the documents.

use serde::Serialize;

use super::finding::{Finding, Level};
use super::why::Verdict;

/// Widest NAME column before names overflow it.
const NAME_WIDTH: usize = 30;

/// Findings ordered for reading: problems first, then warnings, notes, ok;
/// the original order (by area) within a level.
pub fn sorted(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.level));
    v
}

/// `2 problems, 5 warnings, 7 notes, 20 ok`.
pub fn summary(findings: &[Finding]) -> String {
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {}, {}, {} ok",
        plural(count(Level::Problem), "problem", "problems"),
        plural(count(Level::Warn), "warning", "warnings"),
        plural(count(Level::Note), "note", "notes"),
        count(Level::Ok)
    )
}

/// The table. `verbose` also explains the ok lines.
pub fn table(findings: &[Finding], verbose: bool) -> String {
    let rows = sorted(findings);
    let name_w = rows
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, NAME_WIDTH);
    let mut out = format!("{:<8} {:<8} {:<name_w$}  VALUE\n", "LEVEL", "AREA", "NAME");
    let indent = " ".repeat(18);
    for f in rows {
        out.push_str(&format!(
            "{:<8} {:<8} {:<name_w$}  {}  [{}]\n",
            f.level.word(),
            f.area.word(),
            f.name,
            f.value,
            f.id
        ));
        if f.level != Level::Ok || verbose {
            out.push_str(&format!("{indent}{}\n", f.why));
        }
        if let Some(fix) = &f.fix {
            if f.level != Level::Ok || verbose {
                out.push_str(&format!("{indent}fix: {fix}\n"));
            }
        }
    }
    out.push_str(&format!("\n{}\n", summary(findings)));
    let safe = findings
        .iter()
        .filter(|f| f.level >= Level::Warn && f.action.is_some())
        .count();
    if safe > 0 {
        out.push_str(&format!(
            "{safe} of the fixes can be applied for you: `pktio doctor --apply` shows them (nothing changes without --yes).\n"
        ));
    }
    out
}

/// Schema id of the findings document (`pktio doctor --json`, also with
/// `--why-no-packets`).
pub const SCHEMA: &str = "pktio.doctor/1";
/// Schema id of one `--watch --json` line.
pub const WATCH_SCHEMA: &str = "pktio.doctor-watch/1";
/// Schema id of the `--apply --json` document.
pub const APPLY_SCHEMA: &str = "pktio.doctor-apply/1";

/// Whether a finding is at `level` or above (the `--fail-on` test).
pub fn any_at_or_above(findings: &[Finding], level: Level) -> bool {
    findings.iter().any(|f| f.level >= level)
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct Json<'a> {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// Every finding, in check order.
    pub findings: &'a [Finding],
    /// The `--why-no-packets` verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'a Verdict>,
}

/// Serialises findings (and a verdict) as pretty JSON.
///
/// # Errors
/// Never in practice (serde_json on plain data).
pub fn json(findings: &[Finding], verdict: Option<&Verdict>) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Json {
        schema: SCHEMA,
        findings,
        verdict,
    })
}

/// The `--why-no-packets` output: the checklist in order, then the verdict.
pub fn checklist(findings: &[Finding], v: &Verdict) -> String {
    let name_w = findings
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, NAME_WIDTH);
    let mut out = String::new();
    let indent = " ".repeat(10);
    for f in findings {
        out.push_str(&format!(
            "{:<8} {:<name_w$}  {}  [{}]\n",
            f.level.word(),
            f.name,
            f.value,
            f.id
        ));
        if f.level != Level::Ok {
            out.push_str(&format!("{indent}{}\n", f.why));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("{indent}fix: {fix}\n"));
            }
        }
    }
    out.push_str(&format!("\nverdict: {}\n", v.text));
    if let Some(fix) = &v.fix {
        out.push_str(&format!("fix: {fix}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::finding::Area;
    use super::*;

    fn sample() -> Vec<Finding> {
        vec![
            Finding::new(Area::Stack, Level::Ok, "netdev_budget", "300", "budget"),
            Finding::new(Area::Nic, Level::Problem, "eth1 MTU", "MTU 9000", "too big")
                .fix("ip link set dev eth1 mtu 3822"),
            Finding::new(Area::Sockets, Level::Warn, "rmem_max", "208 KiB", "small").action(
                super::super::finding::Action::Sysctl {
                    key: "net.core.rmem_max".into(),
                    value: "16777216".into(),
                },
            ),
        ]
    }

    #[test]
    fn table_is_severity_first_with_fix_on_its_own_line() {
        let t = table(&sample(), false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("LEVEL    AREA     NAME"));
        assert!(
            lines[1].starts_with("PROBLEM  nic      eth1 MTU       MTU 9000"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2].trim(), "too big");
        assert_eq!(lines[3].trim(), "fix: ip link set dev eth1 mtu 3822");
        assert!(lines[4].starts_with("warn     sockets  rmem_max"));
        assert!(lines[7].starts_with("ok       stack    netdev_budget"));
        assert!(t.contains("1 problem, 1 warning, 0 notes, 1 ok"));
        assert!(t.contains("1 of the fixes can be applied"));
        // Ok lines are explained only in verbose mode.
        assert!(!t.contains(" budget\n"));
        assert!(table(&sample(), true).contains(" budget\n"));
        // Each row ends with the finding's stable id.
        assert!(
            lines[1].ends_with("MTU 9000  [nic-eth1-mtu]"),
            "{}",
            lines[1]
        );
        assert!(lines[7].ends_with("[stack-netdev-budget]"), "{}", lines[7]);
    }

    #[test]
    fn json_document() {
        let f = sample();
        let j: serde_json::Value = serde_json::from_str(&json(&f, None).unwrap()).unwrap();
        assert_eq!(j["schema"], "pktio.doctor/1");
        assert_eq!(j["findings"].as_array().unwrap().len(), 3);
        assert_eq!(j["findings"][2]["id"], "sockets-rmem-max");
        assert_eq!(j["findings"][1]["level"], "problem");
        assert!(j.get("verdict").is_none());
        let v = Verdict {
            level: Level::Problem,
            text: "t".into(),
            fix: Some("x".into()),
        };
        let j: serde_json::Value = serde_json::from_str(&json(&f, Some(&v)).unwrap()).unwrap();
        assert_eq!(j["verdict"]["level"], "problem");
        assert_eq!(j["verdict"]["fix"], "x");
    }

    #[test]
    fn fail_on_counts_findings_at_or_above_the_level() {
        let f = sample();
        assert!(any_at_or_above(&f, Level::Problem));
        assert!(!any_at_or_above(&f[..1], Level::Note));
        assert!(any_at_or_above(&f[2..], Level::Warn));
        assert!(!any_at_or_above(&f[2..], Level::Problem));
    }

    #[test]
    fn checklist_ends_with_the_verdict() {
        let v = Verdict {
            level: Level::Problem,
            text: "eth1 MTU: too big".into(),
            fix: Some("ip link set dev eth1 mtu 3822".into()),
        };
        let c = checklist(&sample(), &v);
        let last: Vec<&str> = c.lines().rev().take(2).collect();
        assert_eq!(last[1], "verdict: eth1 MTU: too big");
        assert_eq!(last[0], "fix: ip link set dev eth1 mtu 3822");
    }
}
