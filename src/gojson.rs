//! JSON the way upstream's Go tools read and write it.
//!
//! Output: `json.MarshalIndent(v, "", "  ")` layout with Go's HTML escaping of
//! `<`, `>`, `&`, U+2028 and U+2029. Input: top-level objects keep their members in
//! document order, duplicates included ([`Object`]); a field's value is that of the
//! last member, in document order, whose key equals the field's name under Unicode
//! case folding, as Go's decoder assigns it (so `{"kernel":"a","Kernel":"b"}` means
//! "b" here as in Go). Unknown keys are ignored.

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

/// A JSON object with its members in document order, duplicate keys kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Object(pub Vec<(String, Value)>);

impl Object {
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> std::result::Result<Object, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, Value>()? {
                    v.push(e);
                }
                Ok(Object(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parse exactly one JSON object (trailing bytes are an error, like `json.Unmarshal`).
pub fn parse_object(bytes: &[u8], what: &str) -> Result<Object> {
    match serde_json::from_slice::<Object>(bytes) {
        Ok(o) => Ok(o),
        Err(_) => {
            let v: Value = serde_json::from_slice(bytes).with_context(|| format!("{what}: not valid JSON"))?;
            bail!("{what}: expected a JSON object, found {}", type_name(&v))
        }
    }
}

/// Parse the first JSON value and ignore what follows (like `json.Decoder.Decode`).
pub fn parse_first_object(bytes: &[u8], what: &str) -> Result<Object> {
    match serde_json::Deserializer::from_slice(bytes).into_iter::<Object>().next() {
        Some(Ok(o)) => Ok(o),
        None => bail!("{what}: empty, expected a JSON object"),
        Some(Err(_)) => match serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().next() {
            Some(Ok(v)) => bail!("{what}: expected a JSON object, found {}", type_name(&v)),
            Some(Err(e)) => Err(anyhow::Error::new(e).context(format!("{what}: not valid JSON"))),
            None => bail!("{what}: empty, expected a JSON object"),
        },
    }
}

/// Whether two keys are equal under Unicode simple case folding, as Go's
/// `bytes.EqualFold` says (the Kelvin sign folds to k, the long s to s).
pub fn equal_fold(a: &str, b: &str) -> bool {
    fn one(c: char, to: impl Iterator<Item = char>) -> char {
        let mut it = to;
        match (it.next(), it.next()) {
            (Some(x), None) => x,
            _ => c,
        }
    }
    let (mut x, mut y) = (a.chars(), b.chars());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(c), Some(d)) => {
                let same = c == d
                    || one(c, c.to_lowercase()) == one(d, d.to_lowercase())
                    || one(c, c.to_uppercase()) == one(d, d.to_uppercase());
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Objects a field can be looked up in.
pub trait Members {
    /// The value Go's decoder would assign to the field `key`.
    fn field(&self, key: &str) -> Option<&Value>;
}

impl Members for Object {
    /// The last member in document order whose key folds to `key`.
    fn field(&self, key: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| equal_fold(k, key)).map(|(_, v)| v)
    }
}

impl Members for Map<String, Value> {
    /// Nested objects have lost their order: an exact match first, else a folded one.
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key).or_else(|| self.iter().filter(|(k, _)| equal_fold(k, key)).map(|(_, v)| v).next_back())
    }
}

/// Look up `key` as Go's decoder does.
pub fn get<'a, M: Members + ?Sized>(obj: &'a M, key: &str) -> Option<&'a Value> {
    obj.field(key)
}

/// The value of `key`, with JSON `null` treated as absent.
pub fn get_non_null<'a, M: Members + ?Sized>(obj: &'a M, key: &str) -> Option<&'a Value> {
    get(obj, key).filter(|v| !v.is_null())
}

/// An optional string field; `null` and absent are both `None`.
pub fn opt_string<M: Members + ?Sized>(obj: &M, key: &str, what: &str) -> Result<Option<String>> {
    match get_non_null(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("{what}: field \"{key}\": expected a string, found {}", type_name(other)),
    }
}

/// An optional whole number >= 0 (`null` and absent are `None`); anything else
/// (`-1`, `1.5`, `"3"`) is refused as `{what}: field "{key}": expected a whole
/// number >= 0{hint}, found ...`.
pub fn opt_whole<M: Members + ?Sized>(obj: &M, key: &str, what: &str, hint: &str) -> Result<Option<u64>> {
    match get_non_null(obj, key) {
        None => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::Number(n)) => bail!("{what}: field \"{key}\": expected a whole number >= 0{hint}, found {n}"),
        Some(other) => {
            bail!("{what}: field \"{key}\": expected a whole number >= 0{hint}, found {}", type_name(other))
        }
    }
}

/// An optional boolean (`null` and absent are `None`); anything else (`"true"`,
/// `1`) is refused as `{what}: field "{key}": expected true or false, found ...`.
pub fn opt_bool<M: Members + ?Sized>(obj: &M, key: &str, what: &str) -> Result<Option<bool>> {
    match get_non_null(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => bail!("{what}: field \"{key}\": expected true or false, found {}", type_name(other)),
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

    /// Go assigns every member whose key folds to the field's name, in document
    /// order: the last one wins, exact match or not.
    #[test]
    fn the_last_folded_match_in_document_order_wins_as_in_go() {
        let m = parse_object(br#"{"Version": 2, "version": 1}"#, "t").unwrap();
        assert_eq!(get(&m, "version"), Some(&Value::from(1)));
        let m = parse_object(br#"{"version": 1, "Version": 2}"#, "t").unwrap();
        assert_eq!(get(&m, "version"), Some(&Value::from(2)));
        let m = parse_object(br#"{"kernel": "a", "Kernel": "b", "kernel": "c"}"#, "t").unwrap();
        assert_eq!(get(&m, "kernel"), Some(&Value::from("c")));
        let m = parse_object(br#"{"VERSION": 3}"#, "t").unwrap();
        assert_eq!(get(&m, "version"), Some(&Value::from(3)));
        // U+212A KELVIN SIGN folds to k, U+017F LONG S to s
        let m = parse_object("{\"\u{212a}ernel\": \"kelvin\", \"label\": \"\u{17f}\"}".as_bytes(), "t").unwrap();
        assert_eq!(get(&m, "kernel"), Some(&Value::from("kelvin")));
        assert!(equal_fold("ſ", "S") && !equal_fold("kernel", "kernal"));
    }

    #[test]
    fn trailing_data() {
        assert!(parse_object(b"{} x", "t").is_err());
        assert!(parse_first_object(b"{} x", "t").is_ok());
        assert!(parse_first_object(b"", "t").is_err());
        assert!(parse_object(b"[1]", "t").unwrap_err().to_string().contains("an array"));
    }
}
