//! Lists of ids as people type them on a command line and the kernel
//! prints them in sysfs: `0,2-3`, `6`, `1,0` (queue ids, CPU ids).

/// The most ids one range may stand for: a typo such as `0-4000000000`
/// is refused instead of allocating gigabytes.
pub const MAX_RANGE: u32 = 65_536;

/// Parses ids and ranges separated by commas (`0,2-3`, `3,1`), keeping
/// the order given (repeats stay). `what` names an id in messages
/// (`queue`, `CPU`); `usage` says what to type instead (`a list such as
/// 0,2-3`).
///
/// # Errors
/// A message naming the bad id, an empty range (`3-2`), or a range of more
/// than [`MAX_RANGE`] ids.
pub fn parse_ids(s: &str, what: &str, usage: &str) -> Result<Vec<u32>, String> {
    let id = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("bad {what} {t:?} in {s:?}: use {usage}"))
    };
    let mut ids = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (id(a)?, id(b)?);
                if a > b {
                    return Err(format!("empty {what} range {part:?} in {s:?}"));
                }
                if b - a >= MAX_RANGE {
                    return Err(format!(
                        "{what} range {part:?} in {s:?} is too long (at most {MAX_RANGE} ids)"
                    ));
                }
                ids.extend(a..=b);
            }
            None => ids.push(id(part)?),
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_ranges_in_the_order_given() {
        let p = |s| parse_ids(s, "queue", "a list such as 0,2-3");
        assert_eq!(p("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(p(" 3 , 1-2,1"), Ok(vec![3, 1, 2, 1]));
        assert_eq!(p("7"), Ok(vec![7]));
        assert!(p("").unwrap_err().starts_with("bad queue \"\""));
        assert!(p("0,").unwrap_err().starts_with("bad queue"));
        assert!(p("-1").unwrap_err().starts_with("bad queue"));
        assert!(p("x").unwrap_err().ends_with("use a list such as 0,2-3"));
        assert!(p("3-2")
            .unwrap_err()
            .starts_with("empty queue range \"3-2\""));
        assert!(p("0-4000000000").unwrap_err().contains("too long"));
        assert_eq!(p("0-65535").map(|v| v.len()), Ok(65_536));
    }
}
