//! JSON the way upstream's Go tools read and write it.
//!
//! Output: `json.MarshalIndent(v, "", "  ")` layout with Go's HTML escaping of
//! `<`, `>`, `&`, U+2028 and U+2029. Input: keys are matched case-insensitively
//! (an exact match wins), unknown keys are ignored and the last duplicate wins.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};

/// Serialise like Go's `json.MarshalIndent(v, "", "  ")` (no trailing newline).
pub fn marshal_indent<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).expect("serialising to memory cannot fail");
    go_escape(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Serialise like Go's compact `json.Marshal(v)`.
pub fn marshal<T: Serialize>(v: &T) -> String {
    go_escape(serde_json::to_string(v).expect("serialising to memory cannot fail"))
}

fn go_escape(s: String) -> String {
    // serde_json never escapes these characters, so they can only stand literally
    // inside strings, where Go writes them as \u escapes.
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Parse exactly one JSON object (trailing bytes are an error, like `json.Unmarshal`).
pub fn parse_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_slice(bytes).with_context(|| format!("{what}: not valid JSON"))?;
    into_object(v, what)
}

/// Parse the first JSON value and ignore what follows (like `json.Decoder.Decode`).
pub fn parse_first_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>> {
    let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match it.next() {
        Some(v) => into_object(v.with_context(|| format!("{what}: not valid JSON"))?, what),
        None => bail!("{what}: empty, expected a JSON object"),
    }
}

fn into_object(v: Value, what: &str) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => bail!("{what}: expected a JSON object, found {}", type_name(&other)),
    }
}

/// Look up `key` as Go's decoder does: exact match first, else case-insensitive.
pub fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v).next_back())
}

/// The value of `key`, with JSON `null` treated as absent.
pub fn get_non_null<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    get(obj, key).filter(|v| !v.is_null())
}

/// An optional string field; `null` and absent are both `None`.
pub fn opt_string(obj: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>> {
    match get_non_null(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("{what}: field \"{key}\": expected a string, found {}", type_name(other)),
    }
}

/// A human name of a JSON value's type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_like_go() {
        #[derive(Serialize)]
        struct T {
            a: &'static str,
        }
        assert_eq!(marshal(&T { a: "x<y>&z" }), r#"{"a":"x\u003cy\u003e\u0026z"}"#);
        assert_eq!(marshal_indent(&T { a: "q" }), "{\n  \"a\": \"q\"\n}");
    }

    #[test]
    fn keys_are_case_insensitive_exact_first() {
        let m = parse_object(br#"{"Version": 2, "version": 1}"#, "t").unwrap();
        assert_eq!(get(&m, "version"), Some(&Value::from(1)));
        let m = parse_object(br#"{"VERSION": 3}"#, "t").unwrap();
        assert_eq!(get(&m, "version"), Some(&Value::from(3)));
    }

    #[test]
    fn trailing_data() {
        assert!(parse_object(b"{} x", "t").is_err());
        assert!(parse_first_object(b"{} x", "t").is_ok());
        assert!(parse_first_object(b"", "t").is_err());
        assert!(parse_object(b"[1]", "t").unwrap_err().to_string().contains("an array"));
    }
}
