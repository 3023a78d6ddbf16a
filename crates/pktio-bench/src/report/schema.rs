//! The schema ids of the JSON documents pktio writes, and the one way to
//! write a document: its fields after a leading `"schema": "pktio.NAME/N"`.
//! `docs/JSON.md` lists each document's fields; a change that removes or
//! retypes a field bumps N.

use serde::Serialize;

/// A benchmark [`Report`](super::Report): `pktio bench` (packets, `gen`,
/// `harness`, `tcp`) and `pktio latency`.
pub const BENCH: &str = "pktio.bench/1";
/// The summary of `pktio rxdrop`, `txpush` and `l2fwd`.
pub const LOOP: &str = "pktio.loop/1";
/// One second of `pktio rxdrop`, `txpush` or `l2fwd --json-lines`.
pub const LOOP_SECOND: &str = "pktio.loop-second/1";
/// One second of `pktio gen --json-lines`.
pub const GEN_SECOND: &str = "pktio.gen-second/1";
/// The report of `pktio tcp-recv`.
pub const TCP_RECV: &str = "pktio.tcp-recv/1";
/// The report of `pktio tcp-send`.
pub const TCP_SEND: &str = "pktio.tcp-send/1";
/// The summary of `pktio gen`.
pub const GEN: &str = "pktio.gen/1";
/// The intervals and verdict of `pktio soak`.
pub const SOAK: &str = "pktio.soak/1";
/// The stop summary of `pktio capture`.
pub const CAPTURE: &str = "pktio.capture/1";
/// `pktio capture --json-lines`: one record per second.
pub const CAPTURE_SECOND: &str = "pktio.capture-second/1";

/// `body`'s fields (a struct or map) after a leading `schema` field.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// Pretty JSON of `body` (a struct or a map) with `"schema": schema` first.
///
/// # Errors
/// `body` is not a struct or map, or a value of it fails to serialise.
pub fn document<T: Serialize>(schema: &str, body: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Document { schema, body })
}

/// [`document`] on one line (for one record per line).
///
/// # Errors
/// As [`document`].
pub fn line<T: Serialize>(schema: &str, body: &T) -> serde_json::Result<String> {
    serde_json::to_string(&Document { schema, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        packets: u64,
    }

    #[test]
    fn schema_comes_first_then_the_fields() {
        let text = document(LOOP, &Body { packets: 3 }).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "pktio.loop/1");
        assert_eq!(v["packets"], 3);
        assert!(text.find("schema") < text.find("packets"), "{text}");
        assert_eq!(
            line(GEN, &Body { packets: 1 }).unwrap(),
            r#"{"schema":"pktio.gen/1","packets":1}"#
        );
    }

    #[test]
    fn a_scalar_body_is_an_error_not_a_panic() {
        assert!(document(GEN, &5u32).is_err());
    }
}
