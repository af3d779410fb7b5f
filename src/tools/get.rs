//! `<get path="P"/>`: promote entries (by path or glob) into view, list
//! them (`preview`), or read a slice of one (`line`, `limit`).

use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::paths::normalize_path;
use crate::store::patterns::{hedsearch, is_pattern};
use crate::store::{
    ChangeVisibility, EntryRow, EntryState, EntryWrite, GetEntry, QueryEntries, SetEntry,
    StoreError, Writer, VISIBILITIES,
};
use crate::tokens::count_tokens;
use serde_json::json;

pub struct Get;

/// The content filter: the `body` attribute, or the tag text when the path
/// came as an attribute (upstream ignores that text, a defect).
fn body_filter(cmd: &Command) -> Option<String> {
    if let Some(b) = cmd.attr("body").filter(|b| !b.is_empty()) {
        return Some(b.to_string());
    }
    let text = cmd.body.trim();
    (cmd.attr("path").is_some_and(|p| !p.is_empty()) && !text.is_empty()).then(|| text.to_string())
}

/// One entry a path or pattern matched, with the tokens of its body.
pub(super) struct Match {
    pub path: String,
    pub tokens: i64,
}

/// The run's entries matching `path` (a literal path or a pattern) whose
/// body passes `filter`, ordered by path. Nothing is promoted.
pub(super) async fn matching(
    ctx: &TurnCtx,
    path: &str,
    filter: Option<&str>,
) -> Result<Vec<Match>, StoreError> {
    if is_pattern(path) {
        let items = ctx
            .store
            .run(QueryEntries {
                run_id: ctx.run_id,
                pattern: path.to_string(),
                body_filter: filter.map(str::to_string),
                scheme: None,
                state: None,
                visibility: None,
                token_divisor: ctx.config.token_divisor,
            })
            .await?;
        return Ok(items
            .into_iter()
            .map(|i| Match {
                path: i.path,
                tokens: i.tokens,
            })
            .collect());
    }
    Ok(entry(ctx, path)
        .await?
        .filter(|row| filter.is_none_or(|f| hedsearch(f, &row.body)))
        .map(|row| Match {
            tokens: count_tokens(&row.body, ctx.config.token_divisor),
            path: row.path,
        })
        .into_iter()
        .collect())
}

/// One entry of the run by literal path.
pub(super) async fn entry(ctx: &TurnCtx, path: &str) -> Result<Option<EntryRow>, StoreError> {
    ctx.store
        .run(GetEntry {
            run_id: ctx.run_id,
            path: normalize_path(path),
        })
        .await
}

/// The listing upstream writes for pattern results:
/// `[PREVIEW ]{tool} path="P"[ body="F"]: {n} matched ({Σ} tokens)` and a
/// `{path} ({tokens})` line per match.
pub(super) fn listing(
    tool: &str,
    path: &str,
    filter: Option<&str>,
    matches: &[Match],
    preview: bool,
) -> String {
    let prefix = if preview { "PREVIEW " } else { "" };
    let filter = filter.map(|f| format!(" body=\"{f}\"")).unwrap_or_default();
    let total: i64 = matches.iter().map(|m| m.tokens).sum();
    let lines: Vec<String> = matches
        .iter()
        .map(|m| format!("{} ({})", m.path, m.tokens))
        .collect();
    format!(
        "{prefix}{tool} path=\"{path}\"{filter}: {} matched ({total} tokens)\n{}",
        matches.len(),
        lines.join("\n")
    )
}

/// JavaScript's `parseInt(s, 10)`: leading blanks, a sign, then digits up
/// to the first non-digit. None where JavaScript gives NaN.
fn js_parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    // Saturate rather than fail: a huge line number is just past the end.
    let n = digits[..end].parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -n } else { n })
}

/// The lines `line`/`limit` select from a body of `total` lines, 1-based
/// and inclusive: a negative `line` counts from the end, `limit` is at
/// least 1 and defaults to the rest. `end < start` when `line` is past
/// the end (upstream reports that range as is).
fn slice_range(total: usize, line: Option<i64>, limit: Option<i64>) -> (usize, usize) {
    let total_i = i64::try_from(total).unwrap_or(i64::MAX);
    let start = match line {
        None => 1,
        Some(l) if l < 0 => total_i.saturating_add(l).saturating_add(1).max(1),
        Some(l) => l.max(1),
    };
    let end = match limit {
        Some(n) => (start - 1).saturating_add(n.max(1)).min(total_i),
        None => total_i,
    };
    (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(end).unwrap_or(0),
    )
}

#[async_trait::async_trait]
impl Tool for Get {
    fn name(&self) -> &'static str {
        "get"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_get.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        format!(
            "# get {}\n{}",
            row.attr("path").unwrap_or(row.path),
            row.body
        )
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some(path) = cmd.path() else {
            let message = "Missing required \"path\" attribute on <get>. Use <get path=\"...\"/>.";
            ctx.log_error(message, 400).await?;
            ctx.write_log(
                log_path,
                message,
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({}),
            )
            .await?;
            return Ok(());
        };
        let filter = body_filter(cmd);
        let pattern = is_pattern(&path) || filter.is_some();
        let resolved = |body: String| {
            ctx.write_log(
                log_path,
                body,
                EntryState::Resolved,
                None,
                None,
                json!({ "path": path }),
            )
        };

        if cmd.preview() {
            let matches = matching(ctx, &path, filter.as_deref()).await?;
            resolved(listing("get", &path, filter.as_deref(), &matches, true)).await?;
            return Ok(());
        }
        if !pattern {
            from_editor(ctx, &path).await?;
        }
        if cmd.attr("line").is_some() || cmd.attr("limit").is_some() {
            return read_slice(ctx, cmd, &path, pattern, log_path).await;
        }

        let matches = matching(ctx, &path, filter.as_deref()).await?;
        ctx.store
            .run(ChangeVisibility {
                run_id: ctx.run_id,
                pattern: path.clone(),
                body_filter: filter.clone(),
                visibility: "visible".into(),
                promote_turn: Some(ctx.turn),
            })
            .await?;
        // An invalid value is ignored, as upstream does: the get itself
        // already did what was asked.
        if let Some(v) = cmd
            .attr("visibility")
            .filter(|v| *v != "visible" && VISIBILITIES.contains(v))
        {
            ctx.store
                .run(ChangeVisibility {
                    run_id: ctx.run_id,
                    pattern: path.clone(),
                    body_filter: filter.clone(),
                    visibility: v.to_string(),
                    promote_turn: None,
                })
                .await?;
        }
        let body = if pattern {
            listing("get", &path, filter.as_deref(), &matches, false)
        } else if matches.is_empty() {
            format!("{path} not found")
        } else {
            format!("{path} promoted")
        };
        resolved(body).await?;
        Ok(())
    }
}

/// A project file the run has, read through the run's editor when it has
/// one, so the model sees an unsaved buffer rather than the disk. The
/// entry's stamps stay the disk's, so the next scan keeps this text until
/// the file changes on disk.
async fn from_editor(ctx: &TurnCtx, path: &str) -> Result<(), ToolError> {
    let Some(editor) = &ctx.editor else {
        return Ok(());
    };
    let Some(row) = entry(ctx, path).await? else {
        return Ok(());
    };
    if row.scheme.is_some() {
        return Ok(());
    }
    let Some(read) = editor.read_text(ctx.run_id, &row.path) else {
        return Ok(());
    };
    match read.await {
        Some(text) if text != row.body => {
            ctx.store
                .run(SetEntry(EntryWrite {
                    body: Some(text),
                    state: Some(row.state),
                    turn: row.turn,
                    ..EntryWrite::new(ctx.run_id, row.path, Writer::Plugin)
                }))
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// `line`/`limit`: the log entry carries the slice; nothing is promoted.
async fn read_slice(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
    pattern: bool,
    log_path: &str,
) -> Result<(), ToolError> {
    let fail = |body: String| async move {
        ctx.write_log(
            log_path,
            body.clone(),
            EntryState::Failed,
            Some("validation".into()),
            None,
            json!({ "path": path, "error": body }),
        )
        .await
    };
    if pattern {
        fail("line/limit requires a single path, not a glob or body filter".into()).await?;
        return Ok(());
    }
    // Upstream reads an unparsable number as NaN and prints a NaN range;
    // a refusal that says what to fix serves the model better.
    let mut parsed = [None, None];
    for (slot, key) in parsed.iter_mut().zip(["line", "limit"]) {
        if let Some(raw) = cmd.attr(key) {
            match js_parse_int(raw) {
                Some(n) => *slot = Some(n),
                None => {
                    fail(format!("{key}=\"{raw}\" is not a whole number")).await?;
                    return Ok(());
                }
            }
        }
    }
    let Some(row) = entry(ctx, path).await? else {
        ctx.write_log(
            log_path,
            format!("{path} not found"),
            EntryState::Resolved,
            None,
            None,
            json!({ "path": path }),
        )
        .await?;
        return Ok(());
    };
    let lines: Vec<&str> = row.body.split('\n').collect();
    let total = lines.len();
    let (start, end) = slice_range(total, parsed[0], parsed[1]);
    let from = start.saturating_sub(1);
    let slice = lines
        .get(from..end.max(from))
        .unwrap_or_default()
        .join("\n");
    ctx.write_log(
        log_path,
        format!("{path}\n[lines {start}–{end} / {total} total]\n{slice}"),
        EntryState::Resolved,
        None,
        None,
        json!({
            "path": path,
            "lineStart": start,
            "lineEnd": end,
            "totalLines": total,
        }),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_follows_javascript() {
        assert_eq!(js_parse_int("10"), Some(10));
        assert_eq!(js_parse_int(" -5x"), Some(-5));
        assert_eq!(js_parse_int("+3"), Some(3));
        assert_eq!(js_parse_int("abc"), None);
        assert_eq!(js_parse_int("-"), None);
        assert_eq!(js_parse_int("99999999999999999999"), Some(i64::MAX));
    }

    #[test]
    fn slices() {
        assert_eq!(slice_range(10, Some(3), Some(2)), (3, 4));
        assert_eq!(slice_range(10, Some(-3), None), (8, 10));
        assert_eq!(slice_range(10, Some(-50), Some(2)), (1, 2));
        assert_eq!(slice_range(10, Some(0), None), (1, 10));
        assert_eq!(slice_range(10, None, Some(0)), (1, 1));
        assert_eq!(slice_range(10, Some(20), Some(5)), (20, 10));
        assert_eq!(slice_range(3, Some(i64::MIN), Some(i64::MAX)), (1, 3));
        assert_eq!(slice_range(3, Some(i64::MAX), None), (i64::MAX as usize, 3));
    }
}
