//! Recognising the block-shaped edit syntaxes (spec 02 §4.1 formats 1–5).

use super::{js_trim, Block, Format};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    // Only called on the constant patterns below.
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid constant regex {pattern}: {e}"))
}

static SEARCH_MARKER: LazyLock<Regex> = LazyLock::new(|| re(r"<{3,12} SEARCH"));
static REPLACE_MARKER: LazyLock<Regex> = LazyLock::new(|| re(r">{3,12} REPLACE"));
static MERGE: LazyLock<Regex> =
    LazyLock::new(|| re(r"<{3,12} SEARCH\n((?s:.)*?)\n={3,12}\n((?s:.)*?)\n>{3,12} REPLACE"));
static REPLACE_ONLY: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?m)^={3,12}\n((?s:.)*?)\n>{3,12} REPLACE"));
static HUNK_HEADER: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^@@[^@]*@@"));
static OLD_NEW: LazyLock<Regex> =
    LazyLock::new(|| re(r"<old_text>((?s:.)*?)</old_text>\s*<new_text>((?s:.)*?)</new_text>"));
static JSONISH_SEARCH: LazyLock<Regex> = LazyLock::new(|| re(r#"search\s*=\s*"([^"]*)""#));
static JSONISH_REPLACE: LazyLock<Regex> = LazyLock::new(|| re(r#"replace\s*=\s*"([^"]*)""#));

/// The gate in front of formats 1–4: does the (trimmed) text carry a
/// SEARCH or REPLACE marker, a diff hunk, or `<old_text>`?
pub(crate) fn has_block_markers(trimmed: &str) -> bool {
    SEARCH_MARKER.is_match(trimmed)
        || REPLACE_MARKER.is_match(trimmed)
        || is_diff_like(trimmed)
        || trimmed.contains("<old_text>")
}

fn is_diff_like(s: &str) -> bool {
    s.contains("@@") && (s.contains("\n-") || s.contains("\n+"))
}

/// Formats 1–4 in order; the first that yields any block wins. Returns the
/// format and its blocks, or None when nothing parses.
pub fn parse_edit_content(content: &str) -> Option<(Format, Vec<Block>)> {
    let merge: Vec<Block> = MERGE
        .captures_iter(content)
        .map(|c| Block::new(&c[1], &c[2]))
        .collect();
    if !merge.is_empty() {
        return Some((Format::Merge, merge));
    }
    let replace_only: Vec<Block> = REPLACE_ONLY
        .captures_iter(content)
        .map(|c| Block {
            search: None,
            replace: c[1].to_string(),
        })
        .collect();
    if !replace_only.is_empty() {
        return Some((Format::ReplaceOnly, replace_only));
    }
    let hunks = diff_hunks(content);
    if !hunks.is_empty() {
        return Some((Format::UnifiedDiff, hunks));
    }
    let old_new: Vec<Block> = OLD_NEW
        .captures_iter(content)
        .map(|c| Block::new(&c[1], &c[2]))
        .collect();
    (!old_new.is_empty()).then_some((Format::OldNewText, old_new))
}

/// A unified diff read as blocks, one per hunk: `-` lines and context
/// make the search text, `+` lines and context the replacement. Lines with
/// any other first character (blank lines included) belong to neither.
pub(crate) fn diff_hunks(content: &str) -> Vec<Block> {
    if !is_diff_like(content) {
        return Vec::new();
    }
    HUNK_HEADER
        .split(content)
        .skip(1)
        .filter_map(|hunk| {
            let mut old = Vec::new();
            let mut new = Vec::new();
            for line in hunk.split('\n') {
                if let Some(l) = line.strip_prefix('-') {
                    old.push(l);
                } else if let Some(l) = line.strip_prefix('+') {
                    new.push(l);
                } else if let Some(l) = line.strip_prefix(' ') {
                    old.push(l);
                    new.push(l);
                }
            }
            (!old.is_empty() || !new.is_empty()).then(|| Block::new(old.join("\n"), new.join("\n")))
        })
        .collect()
}

/// A JSON-style edit as the model wrote it. The values keep their JSON
/// type (upstream passes them on as parsed), `replace` defaults to "".
#[derive(Debug, Clone, PartialEq)]
pub struct JsonEdit {
    pub search: Value,
    pub replace: Value,
}

impl JsonEdit {
    /// As a block, with non-string values in their JSON spelling.
    pub fn to_block(&self) -> Block {
        Block::new(value_text(&self.search), value_text(&self.replace))
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Format 5: `{"search": "a", "replace": "b"}` (real JSON, `search`
/// required and not null) or, when the text is not JSON,
/// `{search="a", replace="b"}`.
pub fn parse_json_edit(text: &str) -> Option<JsonEdit> {
    let trimmed = js_trim(text);
    if !trimmed.starts_with('{') || !trimmed.contains("search") {
        return None;
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(json) => {
            let search = json.get("search").filter(|v| !v.is_null())?.clone();
            let replace = json
                .get("replace")
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(|| Value::String(String::new()));
            Some(JsonEdit { search, replace })
        }
        Err(_) => {
            let search = JSONISH_SEARCH.captures(trimmed)?[1].to_string();
            let replace = JSONISH_REPLACE
                .captures(trimmed)
                .map(|c| c[1].to_string())
                .unwrap_or_default();
            Some(JsonEdit {
                search: Value::String(search),
                replace: Value::String(replace),
            })
        }
    }
}
