//! Checks a JSON document against its table in `docs/JSON.md`: the schema
//! id, every field the table does not mark absent-able (`?`), the type of
//! every field, and no field the table does not list (the document and its
//! description stay in step).

use serde_json::Value;

/// The schema document, read at compile time.
const DOC: &str = include_str!("../../../../docs/JSON.md");

/// One row of a schema's table: name, allowed types, may be absent.
struct Field {
    name: String,
    types: Vec<String>,
    optional: bool,
}

/// The rows of `id`'s table.
fn fields(id: &str) -> Vec<Field> {
    let heading = format!("## `{id}`");
    let section = DOC
        .split("\n## ")
        .find(|s| format!("## {s}").starts_with(&heading))
        .unwrap_or_else(|| panic!("docs/JSON.md has no section {heading}"));
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cols: Vec<String> = l
                .replace("\\|", "\u{1}")
                .split('|')
                .map(|c| c.trim().replace('\u{1}', "|"))
                .collect();
            let ty = cols[2].clone();
            Field {
                name: cols[1].trim_matches('`').to_string(),
                optional: ty.ends_with('?'),
                types: ty
                    .trim_end_matches('?')
                    .split('|')
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect()
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Panics with the reason unless `doc` is a valid `id` document.
pub fn check(doc: &Value, id: &str) {
    assert_eq!(doc["schema"], id, "schema id of {doc:#}");
    let obj = doc.as_object().expect("a JSON object");
    let fields = fields(id);
    assert!(!fields.is_empty(), "no fields for {id} in docs/JSON.md");
    for f in &fields {
        match obj.get(&f.name) {
            None => assert!(f.optional, "{id}: field {} missing in {doc:#}", f.name),
            Some(v) => {
                let t = type_of(v);
                // A whole number is also a number.
                let ok = f
                    .types
                    .iter()
                    .any(|w| w == t || (w == "number" && t == "integer"));
                assert!(ok, "{id}: {} is {t}, not {:?}: {v}", f.name, f.types);
            }
        }
    }
    for k in obj.keys() {
        assert!(
            fields.iter().any(|f| &f.name == k),
            "{id}: field {k} is not in docs/JSON.md"
        );
    }
}

/// [`check`] of every line of JSON Lines output.
pub fn check_lines(text: &str, id: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON object per line");
            check(&v, id);
            v
        })
        .collect()
}

/// `--json-lines` output: [`check_lines`] of every line but the last
/// against `record`, and the last (the run's summary) against `summary`.
pub fn check_json_lines(text: &str, record: &str, summary: &str) -> (Vec<Value>, Value) {
    let (records, last) = text
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("records, then the summary: {text}"));
    let mut s = check_lines(last, summary);
    (check_lines(records, record), s.remove(0))
}

/// The schema ids documented, in order.
pub fn ids() -> Vec<&'static str> {
    DOC.lines()
        .filter_map(|l| l.strip_prefix("## `")?.strip_suffix('`'))
        .collect()
}
