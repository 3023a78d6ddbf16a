//! Where a command's output goes. `--json FILE|-` means the same on every
//! command: the JSON document (tagged with its schema id, see
//! `docs/JSON.md` and [`pktio_bench::report::schema`]) is written to FILE,
//! or to stdout with `-`; with JSON on stdout, the text meant for people
//! goes to stderr so that stdout stays one parseable document. With
//! `--json-lines` stdout carries one JSON object per line instead, and the
//! text goes to stderr too.

use std::path::PathBuf;

use anyhow::Context;

/// Where `--json` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonTo {
    /// `-`: standard output.
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
}

impl JsonTo {
    /// Writes `text` (one document, newline added) to stdout or the file,
    /// and says on stderr which file was written.
    ///
    /// # Errors
    /// The file cannot be written (its name is in the message).
    pub fn write(&self, text: &str) -> anyhow::Result<()> {
        match self {
            JsonTo::Stdout => println!("{text}"),
            JsonTo::File(p) => {
                std::fs::write(p, format!("{text}\n"))
                    .with_context(|| format!("writing {}", p.display()))?;
                eprintln!("pktio: wrote {}", p.display());
            }
        }
        Ok(())
    }
}

/// Value parser of `--json`: `-` is stdout, anything else a file name.
///
/// # Errors
/// An empty value.
pub fn parse_json_to(s: &str) -> Result<JsonTo, String> {
    match s {
        "" => Err("expected a file name, or - for stdout".into()),
        "-" => Ok(JsonTo::Stdout),
        p => Ok(JsonTo::File(PathBuf::from(p))),
    }
}

/// Standard output as a `--json` target, for [`text_target`].
static STDOUT: JsonTo = JsonTo::Stdout;

/// Where [`human`] text goes on a command with `--json` and
/// `--json-lines`: JSON Lines take stdout like `--json -` does.
pub fn text_target(json: Option<&JsonTo>, json_lines: bool) -> Option<&JsonTo> {
    if json_lines {
        Some(&STDOUT)
    } else {
        json
    }
}

/// Prints `body` as one compact line with its schema id first (a record
/// of `--json-lines`).
///
/// # Errors
/// `body` does not serialise to a JSON object.
pub fn print_line<T: serde::Serialize>(schema: &str, body: &T) -> anyhow::Result<()> {
    println!(
        "{}",
        pktio_bench::report::schema::line(schema, body).context("serialising a JSON line")?
    );
    Ok(())
}

/// Whether JSON goes to stdout (so that text for people goes to stderr).
pub fn json_on_stdout(json: Option<&JsonTo>) -> bool {
    json == Some(&JsonTo::Stdout)
}

/// Prints text for people: on stdout, or on stderr when `json` takes
/// stdout. `text` is printed as is (no newline added).
pub fn human(json: Option<&JsonTo>, text: &str) {
    if json_on_stdout(json) {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// Writes `json`'s document, if one was asked for: [`document`] of `body`.
///
/// # Errors
/// Serialising fails, or the file cannot be written.
pub fn emit<T: serde::Serialize>(
    json: Option<&JsonTo>,
    schema: &str,
    body: &T,
) -> anyhow::Result<()> {
    match json {
        Some(to) => to.write(&document(schema, body)?),
        None => Ok(()),
    }
}

/// Pretty JSON of `body` with its schema id first.
///
/// # Errors
/// `body` does not serialise to a JSON object.
pub fn document<T: serde::Serialize>(schema: &str, body: &T) -> anyhow::Result<String> {
    pktio_bench::report::schema::document(schema, body).context("serialising the JSON document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_is_stdout_anything_else_a_file() {
        assert_eq!(parse_json_to("-"), Ok(JsonTo::Stdout));
        assert_eq!(
            parse_json_to("out.json"),
            Ok(JsonTo::File(PathBuf::from("out.json")))
        );
        assert!(parse_json_to("").is_err());
        assert!(json_on_stdout(Some(&JsonTo::Stdout)));
        assert!(!json_on_stdout(Some(&JsonTo::File("x".into()))));
        assert!(!json_on_stdout(None));
    }
}
