//! Per-tool resolution of attributes versus tag text (spec 02 §3.3, §5.2):
//! the command object upstream's parser hands to its tools, as JSON.

use super::Command;
use crate::hedberg::{self, js_trim, Detected, EditAttrs};
use serde_json::{json, Map, Value};

/// Builds `{name, ...attrs, <resolved fields>}` in upstream's key order: a
/// resolved field that is also an attribute keeps the attribute's place.
pub(crate) fn to_json(cmd: &Command) -> Value {
    let t = js_trim(&cmd.body);
    let a = |k: &str| cmd.attr(k);
    let truthy = |k: &str| a(k).filter(|v| !v.is_empty());
    let or_null = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_string()));
    let text_or = |k: &str| -> Value {
        match truthy(k) {
            Some(v) => json!(v),
            None if !t.is_empty() => json!(t),
            None => Value::Null,
        }
    };
    let name = cmd.name.as_str();
    if name == "set" {
        return set_json(cmd, t);
    }
    let mut obj = spread(cmd);
    match name {
        "update" => {
            obj.insert("body".into(), json!(body_or_attr(t, a("body"))));
            let status = match truthy("status") {
                Some(s) => js_number_json(s),
                None => json!(102),
            };
            obj.insert("status".into(), status);
        }
        "get" | "rm" => {
            obj.insert("path".into(), text_or("path"));
            // With a path attribute the tag text is the content filter
            // (upstream drops it; spec 02 §3.3 marks that a defect).
            if truthy("path").is_some() && a("body").is_none() && !t.is_empty() {
                obj.insert("body".into(), json!(t));
            }
        }
        "search" => {
            obj.insert("path".into(), text_or("path"));
            let results = truthy("results").map_or(Value::Null, js_number_json);
            obj.insert("results".into(), results);
        }
        "mv" | "cp" => {
            if let Some(p) = a("path") {
                obj.insert("path".into(), json!(p));
            }
            obj.insert("to".into(), text_or("to"));
        }
        "sh" | "env" => {
            obj.insert("command".into(), text_or("command"));
        }
        "ask_user" => {
            obj.insert("question".into(), or_null(truthy("question")));
            obj.insert("options".into(), text_or("options"));
        }
        // think, and any tool registered later: the text, else the attribute.
        _ => {
            let body = if t.is_empty() { a("body") } else { Some(t) };
            if let Some(b) = body {
                obj.insert("body".into(), json!(b));
            }
        }
    }
    Value::Object(obj)
}

fn spread(cmd: &Command) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("name".into(), json!(cmd.name));
    for (k, v) in &cmd.attrs {
        obj.insert(k.clone(), json!(v));
    }
    obj
}

fn body_or_attr<'a>(t: &'a str, attr: Option<&'a str>) -> &'a str {
    if t.is_empty() {
        attr.unwrap_or_default()
    } else {
        t
    }
}

/// `<set>`: edits first (hedberg's detection order), else a plain write.
fn set_json(cmd: &Command, t: &str) -> Value {
    let a = |k: &str| cmd.attr(k);
    let mut obj = Map::new();
    obj.insert("name".into(), json!("set"));
    let put = |obj: &mut Map<String, Value>, k: &str| {
        if let Some(v) = a(k) {
            obj.insert(k.into(), json!(v));
        }
    };
    let attrs = EditAttrs {
        search: a("search"),
        replace: a("replace"),
        body: a("body"),
    };
    match hedberg::detect(&cmd.body, attrs) {
        Detected::Blocks { blocks, .. } => {
            put(&mut obj, "path");
            put(&mut obj, "body");
            put(&mut obj, "preview");
            obj.insert("blocks".into(), json!(blocks));
        }
        Detected::Json(edit) => {
            put(&mut obj, "path");
            obj.insert("search".into(), edit.search);
            obj.insert("replace".into(), edit.replace);
        }
        Detected::Sed(commands) => {
            put(&mut obj, "path");
            if let [one] = commands.as_slice() {
                obj.insert("search".into(), json!(one.search));
                obj.insert("replace".into(), json!(one.replace));
                obj.insert("flags".into(), json!(one.flags));
                obj.insert("sed".into(), json!(true));
            } else {
                let blocks: Vec<Value> = commands
                    .iter()
                    .map(|c| json!({"search": c.search, "replace": c.replace, "flags": c.flags, "sed": true}))
                    .collect();
                obj.insert("blocks".into(), json!(blocks));
            }
        }
        Detected::Attributes { search, replace } => {
            put(&mut obj, "path");
            put(&mut obj, "body");
            put(&mut obj, "preview");
            obj.insert("search".into(), json!(search));
            obj.insert("replace".into(), json!(replace));
        }
        Detected::BodyAttribute { search, replace } => {
            put(&mut obj, "path");
            obj.insert("search".into(), json!(search));
            obj.insert("replace".into(), json!(replace));
            put(&mut obj, "preview");
        }
        Detected::Full(_) => {
            let mut obj = spread(cmd);
            obj.insert("body".into(), json!(body_or_attr(t, a("body"))));
            return Value::Object(obj);
        }
    }
    Value::Object(obj)
}

/// JavaScript's `Number(s)` for attribute strings, as JSON: integers stay
/// integers, NaN and the infinities become null (as `JSON.stringify` does).
pub(crate) fn js_number_json(s: &str) -> Value {
    match js_number(s) {
        Some(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
            json!(n as i64)
        }
        Some(n) if n.is_finite() => json!(n),
        _ => Value::Null,
    }
}

/// `Number(s)`: trimmed; "" is 0; decimal, `0x`/`0o`/`0b` integers,
/// `Infinity`; anything else NaN (None).
pub(crate) fn js_number(s: &str) -> Option<f64> {
    let t = js_trim(s);
    if t.is_empty() {
        return Some(0.0);
    }
    // `0x…`, `0o…`, `0b…`: the first two bytes are ASCII, so slicing after
    // them is on a character boundary.
    let b = t.as_bytes();
    if b.len() >= 2 && b[0] == b'0' {
        let radix = match b[1] {
            b'x' | b'X' => Some(16),
            b'o' | b'O' => Some(8),
            b'b' | b'B' => Some(2),
            _ => None,
        };
        if let Some(r) = radix {
            let digits = &t[2..];
            if digits.is_empty() {
                return None;
            }
            return digits.chars().try_fold(0f64, |acc, c| {
                c.to_digit(r).map(|d| acc * f64::from(r) + f64::from(d))
            });
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return Some(if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Rust accepts "inf"/"nan" spellings JavaScript does not.
    if !unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_javascript() {
        let cases = [
            ("200", Some(200.0)),
            (" 155 ", Some(155.0)),
            ("", Some(0.0)),
            ("0x10", Some(16.0)),
            ("1e2", Some(100.0)),
            ("3.5", Some(3.5)),
            ("-5", Some(-5.0)),
            ("12abc", None),
            ("inf", None),
            ("NaN", None),
            ("0x", None),
            ("0b101", Some(5.0)),
            // Found by fuzzing: a multi-byte character right after the first byte.
            ("2\u{FCD0}00", None),
        ];
        for (s, want) in cases {
            assert_eq!(js_number(s), want, "{s:?}");
        }
        assert_eq!(js_number_json("abc"), Value::Null);
        assert_eq!(js_number_json("Infinity"), Value::Null);
        assert_eq!(js_number_json("200"), json!(200));
    }
}
