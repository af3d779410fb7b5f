//! Hedberg: the edit syntaxes models write, turned into deterministic edits.
//!
//! Models speak whatever edit dialect they were trained on: merge-conflict
//! SEARCH/REPLACE blocks, unified diffs, sed, `<old_text>`/`<new_text>`,
//! JSON objects, `search=`/`replace=` attributes or simply the whole new
//! text. [`detect`] recognises them in upstream's order (spec 02 §4.1) and
//! [`apply`] runs the result against a body: sed as a regex, then a literal
//! match, then a whitespace-tolerant line match (§4.1 "Applying").
//! Replacements are inserted literally; nothing here panics on model input.

mod detect;
mod formats;
mod matcher;
mod sed;
mod udiff;

pub use detect::{detect, looks_like_edit, Detected, EditAttrs};
pub use formats::{parse_edit_content, parse_json_edit, JsonEdit};
pub use sed::{is_sed_delimiter, parse_sed, SedCommand};

use serde::Serialize;

/// Which of the edit syntaxes a body was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `<<<<<<< SEARCH` / `=======` / `>>>>>>> REPLACE` blocks.
    Merge,
    /// `=======` / `>>>>>>> REPLACE` with no SEARCH part: the whole new text.
    ReplaceOnly,
    /// `@@ … @@` hunks.
    UnifiedDiff,
    /// `<old_text>…</old_text><new_text>…</new_text>`.
    OldNewText,
    /// `{"search": …, "replace": …}` or `{search="…", replace="…"}`.
    Json,
    /// `s/old/new/flags`, possibly chained.
    Sed,
    /// `search="…"` (and `replace="…"` or the tag text) attributes.
    Attributes,
    /// `body="old"` attribute with the tag text as the replacement.
    BodyAttribute,
    /// The tag text is the whole new body.
    Full,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Merge => "SEARCH/REPLACE",
            Format::ReplaceOnly => "replace-only",
            Format::UnifiedDiff => "unified diff",
            Format::OldNewText => "old_text/new_text",
            Format::Json => "JSON",
            Format::Sed => "sed",
            Format::Attributes => "search/replace attribute",
            Format::BodyAttribute => "body attribute",
            Format::Full => "full replacement",
        })
    }
}

/// One search/replace pair. `search: None` means "the replacement is the
/// whole new body" (a replace-only block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    pub search: Option<String>,
    pub replace: String,
}

impl Block {
    pub fn new(search: impl Into<String>, replace: impl Into<String>) -> Self {
        Block {
            search: Some(search.into()),
            replace: replace.into(),
        }
    }
}

/// An edit ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Search/replace blocks applied one after another.
    Blocks { format: Format, blocks: Vec<Block> },
    /// sed substitutions applied one after another.
    Sed(Vec<SedCommand>),
    /// A unified diff, applied with diffy; its hunks as blocks are the
    /// fallback when the context lines do not match exactly.
    Diff { patch: String, blocks: Vec<Block> },
    /// The whole new body.
    Full(String),
}

/// Why an edit could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("SEARCH text not found (it is matched literally, not as a pattern; copy it exactly from the current text): {}", preview(search))]
    NoMatch { search: String },
    #[error(
        "SEARCH text matches {count} places; add surrounding lines so it matches exactly one: {}",
        preview(search)
    )]
    Ambiguous { search: String, count: usize },
    #[error("malformed {format} edit: {reason}")]
    Malformed { format: Format, reason: String },
    #[error("the edit would grow the text past {limit} bytes; write the new text in full instead")]
    TooLarge { limit: usize },
}

/// How large an edit may make a text: four times the original plus 4 MiB.
/// Chained sed commands such as `s/a/aa/` double the text each time, and
/// an empty regex match puts the replacement at every position; without a
/// ceiling a few lines of model output exhaust memory.
pub fn size_limit(original_len: usize) -> usize {
    original_len.saturating_mul(4).saturating_add(4 << 20)
}

/// Fails when replacing `count` matches of total length `matched` by
/// `replacement` would pass `limit`.
pub(crate) fn check_growth(
    len: usize,
    count: usize,
    matched: usize,
    replacement: &str,
    limit: usize,
) -> Result<(), EditError> {
    let grown = len
        .saturating_sub(matched)
        .saturating_add(count.saturating_mul(replacement.len()));
    if grown > limit {
        return Err(EditError::TooLarge { limit });
    }
    Ok(())
}

/// A successful edit: the new body and any notes about how it was matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub body: String,
    pub warnings: Vec<String>,
}

/// Applies `edit` to `body`. Blocks run in order and stop at the first error.
pub fn apply(body: &str, edit: &Edit) -> Result<Applied, EditError> {
    let limit = size_limit(body.len());
    match edit {
        Edit::Full(text) => Ok(Applied {
            body: text.clone(),
            warnings: Vec::new(),
        }),
        Edit::Blocks { blocks, .. } => apply_blocks(body, blocks, limit),
        Edit::Sed(commands) => {
            let mut current = body.to_string();
            let mut warnings = Vec::new();
            for cmd in commands {
                let step = sed::apply(&current, cmd, limit)?;
                current = step.body;
                warnings.extend(step.warnings);
            }
            Ok(Applied {
                body: current,
                warnings,
            })
        }
        Edit::Diff { patch, blocks } => match udiff::apply(body, patch) {
            Ok(text) => Ok(Applied {
                body: text,
                warnings: Vec::new(),
            }),
            // The model's line numbers or context rarely match exactly; the
            // hunks as search/replace blocks get the tolerant matcher.
            Err(diff_error) => match apply_blocks(body, blocks, limit) {
                Ok(applied) => Ok(applied),
                Err(EditError::Malformed { .. }) => Err(diff_error),
                Err(e) => Err(e),
            },
        },
    }
}

fn apply_blocks(body: &str, blocks: &[Block], limit: usize) -> Result<Applied, EditError> {
    if blocks.is_empty() {
        return Err(EditError::Malformed {
            format: Format::Merge,
            reason: "no search/replace blocks".into(),
        });
    }
    let mut current = body.to_string();
    let mut warnings = Vec::new();
    for block in blocks {
        let step = match &block.search {
            None => Applied {
                body: block.replace.clone(),
                warnings: Vec::new(),
            },
            Some(search) => replace_within(&current, search, &block.replace, limit)?,
        };
        current = step.body;
        warnings.extend(step.warnings);
    }
    Ok(Applied {
        body: current,
        warnings,
    })
}

/// One literal search/replace against `body`: every exact occurrence is
/// replaced (upstream's `replaceAll`, but literal: no `$&` expansion); an
/// empty search appends; otherwise the whitespace-tolerant line matcher.
pub fn replace(body: &str, search: &str, replacement: &str) -> Result<Applied, EditError> {
    replace_within(body, search, replacement, size_limit(body.len()))
}

pub(crate) fn replace_within(
    body: &str,
    search: &str,
    replacement: &str,
    limit: usize,
) -> Result<Applied, EditError> {
    if !search.is_empty() && body.contains(search) {
        let count = body.matches(search).count();
        check_growth(body.len(), count, count * search.len(), replacement, limit)?;
        return Ok(Applied {
            body: body.replace(search, replacement),
            warnings: Vec::new(),
        });
    }
    let applied = matcher::match_and_patch(body, search, replacement)?;
    if applied.body.len() > limit {
        return Err(EditError::TooLarge { limit });
    }
    Ok(applied)
}

/// A unified diff of `old` → `new` (three lines of context), for the
/// `patch` attribute of edit log entries.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    udiff::create(path, old, new)
}

/// The text a `patch` attribute's edit started from, given the text it
/// produced (replaying an edit whose old file text is gone).
pub fn text_before_patch(new: &str, patch: &str) -> Option<String> {
    udiff::text_before(new, patch)
}

/// Whitespace as JavaScript's `String.prototype.trim` sees it, so "blank"
/// and "trimmed" agree with upstream (it trims U+FEFF but not U+0085).
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JavaScript's `trim()`.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

fn preview(s: &str) -> String {
    const MAX: usize = 120;
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        format!("\"{flat}\"")
    } else {
        let cut: String = flat.chars().take(MAX).collect();
        format!("\"{cut}…\"")
    }
}

#[cfg(test)]
mod tests;
