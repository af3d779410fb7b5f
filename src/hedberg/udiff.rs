//! Unified diffs through diffy: model-written hunks are normalised (counts
//! recomputed, bare blank lines read as blank context, missing headers
//! added) and then parsed and applied by diffy, which finds each hunk near
//! its stated line.

use super::{EditError, Format};
use regex::Regex;
use std::sync::LazyLock;

static OLD_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^@@\s*-(\d+)").unwrap_or_else(|e| panic!("invalid constant regex: {e}"))
});

/// Applies `patch` to `body` exactly (context lines must match).
pub(crate) fn apply(body: &str, patch: &str) -> Result<String, EditError> {
    let canonical = normalise(patch)?;
    let parsed = diffy::Patch::from_str(&canonical).map_err(|e| EditError::Malformed {
        format: Format::UnifiedDiff,
        reason: e.to_string(),
    })?;
    // diffy compares whole lines including their newline; give the last
    // line one and take it off again afterwards.
    let missing_newline = !body.is_empty() && !body.ends_with('\n');
    let base = if missing_newline {
        format!("{body}\n")
    } else {
        body.to_string()
    };
    let mut out = diffy::apply(&base, &parsed).map_err(|e| EditError::Malformed {
        format: Format::UnifiedDiff,
        reason: format!("{e}: its context lines are not in the text"),
    })?;
    if missing_newline && out.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

/// Rewrites a model's diff into one diffy accepts.
fn normalise(patch: &str) -> Result<String, EditError> {
    let mut out = String::from("--- a\n+++ b\n");
    let mut hunks = 0usize;
    let mut lines = patch.lines().peekable();
    // Skip everything before the first hunk (headers, prose).
    while let Some(line) = lines.peek() {
        if line.starts_with("@@") {
            break;
        }
        lines.next();
    }
    while let Some(header) = lines.next() {
        let start: usize = OLD_START
            .captures(header)
            .and_then(|c| c[1].parse().ok())
            .unwrap_or(1);
        let mut body = String::new();
        let (mut old, mut new) = (0usize, 0usize);
        while let Some(line) = lines.peek() {
            if line.starts_with("@@") {
                break;
            }
            let line = lines.next().unwrap_or_default();
            let (kind, text) = match line.chars().next() {
                Some(c @ (' ' | '-' | '+')) => (c, &line[1..]),
                Some('\\') => {
                    body.push_str(line);
                    body.push('\n');
                    continue;
                }
                // Editors strip the lone space of blank context lines.
                None => (' ', ""),
                // Prose after the diff, or a `---` of a second file.
                Some(_) => continue,
            };
            match kind {
                '-' => old += 1,
                '+' => new += 1,
                _ => {
                    old += 1;
                    new += 1;
                }
            }
            body.push(kind);
            body.push_str(text);
            body.push('\n');
        }
        // Trailing blank lines are usually the end of the reply, not context.
        while body.ends_with(" \n") && body[..body.len() - 2].ends_with('\n') {
            body.truncate(body.len() - 2);
            old -= 1;
            new -= 1;
        }
        if old == 0 && new == 0 {
            continue;
        }
        // `-N,0` inserts after line N; diffy positions by the new start.
        let (old_start, new_start) = if old == 0 {
            (start, start + 1)
        } else {
            (start.max(1), start.max(1))
        };
        out.push_str(&format!("@@ -{old_start},{old} +{new_start},{new} @@\n"));
        out.push_str(&body);
        hunks += 1;
    }
    if hunks == 0 {
        return Err(EditError::Malformed {
            format: Format::UnifiedDiff,
            reason: "no hunk with any `-`, `+` or context line".into(),
        });
    }
    Ok(out)
}

/// A unified diff of `old` → `new` with three lines of context.
/// The text before an edit, from the text after it and the edit's
/// [`create`]d patch; `None` when the patch does not parse or does not
/// apply backwards to `new`.
pub(crate) fn text_before(new: &str, patch: &str) -> Option<String> {
    let patch = diffy::Patch::from_str(patch).ok()?;
    diffy::apply(new, &patch.reverse()).ok()
}

pub(crate) fn create(path: &str, old: &str, new: &str) -> String {
    let mut options = diffy::DiffOptions::new();
    options.set_context_len(3);
    let patch = options.create_patch(old, new);
    let text = patch.to_string();
    // diffy names the files "original"/"modified"; name the entry instead.
    text.replacen("--- original", &format!("--- {path}\told"), 1)
        .replacen("+++ modified", &format!("+++ {path}\tnew"), 1)
}
