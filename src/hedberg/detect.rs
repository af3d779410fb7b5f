//! Which edit a `<set>` body and its attributes ask for, in upstream's
//! order (spec 02 §4.1 "parser order").

use super::formats::{has_block_markers, parse_edit_content, parse_json_edit, JsonEdit};
use super::sed::{is_sed_delimiter, parse_sed, SedCommand};
use super::{js_trim, Block, Edit, Format};

/// The attributes of a `<set>` that take part in choosing the edit.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditAttrs<'a> {
    pub search: Option<&'a str>,
    pub replace: Option<&'a str>,
    pub body: Option<&'a str>,
}

/// What a `<set>` asks for, keeping what upstream's command object keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Detected {
    /// Formats 1–4: merge blocks, replace-only, diff hunks, old/new text.
    Blocks { format: Format, blocks: Vec<Block> },
    /// Format 5.
    Json(JsonEdit),
    /// Format 6: one or more `s` commands.
    Sed(Vec<SedCommand>),
    /// Format 7: a non-empty `search` attribute; `replace` attribute, else the text.
    Attributes { search: String, replace: String },
    /// Format 8: `body="old"` plus tag text.
    BodyAttribute { search: String, replace: String },
    /// Format 9: the text (else the `body` attribute, else "") is the new body.
    Full(String),
}

/// Does the trimmed text look like formats 1–4 (the gate)?
pub fn looks_like_edit(text: &str) -> bool {
    has_block_markers(js_trim(text))
}

/// Classifies a `<set>`'s raw tag text and attributes. When the gate fires
/// but no block parses, detection goes on with the later formats, as
/// upstream does.
pub fn detect(raw_body: &str, attrs: EditAttrs<'_>) -> Detected {
    let trimmed = js_trim(raw_body);
    if has_block_markers(trimmed) {
        if let Some((format, blocks)) = parse_edit_content(raw_body) {
            return Detected::Blocks { format, blocks };
        }
    }
    if let Some(json) = parse_json_edit(trimmed) {
        return Detected::Json(json);
    }
    let mut chars = trimmed.chars();
    if chars.next() == Some('s') && chars.next().is_some_and(is_sed_delimiter) {
        if let Some(commands) = parse_sed(trimmed) {
            return Detected::Sed(commands);
        }
    }
    if let Some(search) = attrs.search.filter(|s| !s.is_empty()) {
        return Detected::Attributes {
            search: search.to_string(),
            replace: attrs.replace.unwrap_or(trimmed).to_string(),
        };
    }
    if let Some(body) = attrs.body.filter(|b| !b.is_empty() && !trimmed.is_empty()) {
        return Detected::BodyAttribute {
            search: body.to_string(),
            replace: trimmed.to_string(),
        };
    }
    let full = if trimmed.is_empty() {
        attrs.body.unwrap_or_default()
    } else {
        trimmed
    };
    Detected::Full(full.to_string())
}

impl Detected {
    /// The edit to apply. `raw_body` is the text this was detected from
    /// (a unified diff is applied from it).
    pub fn into_edit(self, raw_body: &str) -> Edit {
        match self {
            Detected::Blocks {
                format: Format::UnifiedDiff,
                blocks,
            } => Edit::Diff {
                patch: raw_body.to_string(),
                blocks,
            },
            Detected::Blocks { format, blocks } => Edit::Blocks { format, blocks },
            Detected::Json(json) => Edit::Blocks {
                format: Format::Json,
                blocks: vec![json.to_block()],
            },
            Detected::Sed(commands) => Edit::Sed(commands),
            Detected::Attributes { search, replace } => Edit::Blocks {
                format: Format::Attributes,
                blocks: vec![Block::new(search, replace)],
            },
            Detected::BodyAttribute { search, replace } => Edit::Blocks {
                format: Format::BodyAttribute,
                blocks: vec![Block::new(search, replace)],
            },
            Detected::Full(text) => Edit::Full(text),
        }
    }
}
