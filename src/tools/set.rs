//! `<set path="P">text</set>`: write an entry, edit it with any of the
//! hedberg edit forms, list what a write would touch (`preview`), or,
//! without text, change the visibility of the matching entries.

use super::get::{entry, listing, matching, Match};
use super::known::size_gate;
use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::hedberg::{self, Block, Detected, Edit, EditAttrs};
use crate::parse::Command;
use crate::store::paths::scheme_of;
use crate::store::patterns::is_pattern;
use crate::store::{
    ChangeVisibility, EntryRow, EntryState, EntryWrite, SetByPattern, SetEntry, Writer,
    VISIBILITIES,
};
use crate::tokens::count_tokens;
use serde_json::{json, Map, Value};

pub struct Set;

/// `<<<<<<< SEARCH` … `>>>>>>> REPLACE`, the shape the log shows an edit in.
fn merge_block(search: &str, replace: &str) -> String {
    if search.is_empty() {
        format!("<<<<<<< SEARCH\n=======\n{replace}\n>>>>>>> REPLACE")
    } else {
        format!("<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE")
    }
}

/// Does the body hold a whole SEARCH…REPLACE block?
fn has_merge_block(body: &str) -> bool {
    body.find("<<<<<<< SEARCH")
        .is_some_and(|at| body[at..].contains(">>>>>>> REPLACE"))
}

/// The edit as merge blocks, for the log's `merge` attribute; None for a
/// whole-body replacement, which has no old side to show.
fn edit_merge(edit: &Edit) -> Option<String> {
    let blocks: Vec<String> = match edit {
        Edit::Blocks { blocks, .. } | Edit::Diff { blocks, .. } => blocks
            .iter()
            .map(|b: &Block| b.search.as_deref().map(|s| merge_block(s, &b.replace)))
            .collect::<Option<_>>()?,
        Edit::Sed(commands) => commands
            .iter()
            .map(|c| merge_block(&c.search, &c.replace))
            .collect(),
        Edit::Full(_) => return None,
    };
    (!blocks.is_empty()).then(|| blocks.join("\n"))
}

fn summary_attr(cmd: &Command) -> Option<String> {
    cmd.attr("summary").map(|s| s.chars().take(80).collect())
}

#[async_trait::async_trait]
impl Tool for Set {
    fn name(&self) -> &'static str {
        "set"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_set.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        let target = row.attr("path").unwrap_or(row.path);
        if let Some(error) = row.attr("error") {
            return format!("# set {target}\n{error}");
        }
        let tokens = |key: &str| row.attributes.get(key).and_then(Value::as_i64);
        let mut out = format!("# set {target}");
        if let (Some(before), Some(after)) = (tokens("beforeTokens"), tokens("afterTokens")) {
            out.push_str(&format!(" {before}→{after} tokens"));
        }
        if let Some(merge) = row.attr("merge").filter(|m| !m.is_empty()) {
            out.push('\n');
            out.push_str(merge);
        }
        out
    }
    fn summarized(&self, row: &ProjectionRow) -> String {
        // A merge block is kept whole: cut short it no longer shows the
        // before and after the model needs to recognise its edit.
        if has_merge_block(row.body) {
            return row.body.to_string();
        }
        collapsed_preview(row.body)
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some(path) = cmd.path() else {
            ctx.write_log(
                log_path,
                "path is required",
                EntryState::Failed,
                Some("validation".into()),
                None,
                json!({ "error": "path is required" }),
            )
            .await?;
            return Ok(());
        };
        let detected = hedberg::detect(
            &cmd.body,
            EditAttrs {
                search: cmd.attr("search"),
                replace: cmd.attr("replace"),
                body: cmd.attr("body"),
            },
        );
        let visibility = cmd.attr("visibility");
        let text = match &detected {
            Detected::Full(text) => Some(text.clone()),
            _ => None,
        };
        if text.as_deref() == Some("") {
            if let Some(v) = visibility {
                return change_visibility(ctx, cmd, &path, v, log_path).await;
            }
        }
        if scheme_of(&path).is_none() {
            // Project files change only through accepted proposals, the
            // edit forms included.
            if cmd.preview() {
                return preview(ctx, cmd, &path, log_path).await;
            }
            return file::propose(ctx, cmd, &path, detected, log_path).await;
        }
        if let Some(v) = visibility.filter(|v| !VISIBILITIES.contains(v)) {
            return invalid_visibility(ctx, &path, v, log_path).await;
        }
        if cmd.preview() {
            return preview(ctx, cmd, &path, log_path).await;
        }
        let Some(text) = text else {
            return edit(ctx, cmd, &path, detected, log_path).await;
        };
        if let Some(over) = size_gate(&ctx.config, &path, &text) {
            return refuse_oversize(ctx, &path, &over, log_path).await;
        }
        let filter = cmd.attr("filter").filter(|f| !f.is_empty());
        if filter.is_some() || is_pattern(&path) {
            return bulk_write(ctx, &path, filter, text, visibility, log_path).await;
        }
        full_write(ctx, cmd, &path, text, log_path).await
    }
}

/// `preview`: what the write would touch, nothing written. Any `preview`
/// attribute counts, a bare one included (upstream writes on a bare one),
/// and it wins over an edit body (upstream applies the edit).
async fn preview(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
    log_path: &str,
) -> Result<(), ToolError> {
    let filter = cmd.attr("body").filter(|b| !b.is_empty());
    let matches = matching(ctx, path, filter).await?;
    ctx.write_log(
        log_path,
        listing("set", path, filter, &matches, true),
        EntryState::Resolved,
        None,
        None,
        json!({ "path": path }),
    )
    .await?;
    Ok(())
}

/// A scheme path written whole: upsert, then a log entry that shows the
/// change as a merge block with its token counts.
async fn full_write(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
    text: String,
    log_path: &str,
) -> Result<(), ToolError> {
    let visibility = cmd.attr("visibility");
    let summary = summary_attr(cmd);
    let old = entry(ctx, path).await?.map(|r| r.body).unwrap_or_default();
    let mut attributes = Map::new();
    if let Some(s) = &summary {
        attributes.insert("summary".into(), Value::String(s.clone()));
    }
    ctx.store
        .run(SetEntry(EntryWrite {
            body: Some(text.clone()),
            state: Some(EntryState::Resolved),
            visibility: Some(visibility.unwrap_or("visible").into()),
            attributes: Some(Value::Object(attributes.clone())),
            turn: ctx.turn,
            loop_id: Some(ctx.loop_id),
            ..EntryWrite::new(ctx.run_id, path, Writer::Model)
        }))
        .await?;
    let divisor = ctx.config.token_divisor;
    attributes.insert("path".into(), Value::String(path.to_string()));
    attributes.insert(
        "patch".into(),
        Value::String(hedberg::unified_diff(path, &old, &text)),
    );
    attributes.insert("merge".into(), Value::String(merge_block(&old, &text)));
    attributes.insert("beforeTokens".into(), json!(count_tokens(&old, divisor)));
    attributes.insert("afterTokens".into(), json!(count_tokens(&text, divisor)));
    if let Some(v) = visibility {
        attributes.insert("visibility".into(), Value::String(v.into()));
    }
    ctx.write_log(
        log_path,
        text,
        EntryState::Resolved,
        None,
        None,
        Value::Object(attributes),
    )
    .await?;
    Ok(())
}

/// The known:// size gate refused the body: a failed entry that says how
/// large it was and to split it; the body itself is not stored anywhere.
async fn refuse_oversize(
    ctx: &TurnCtx,
    path: &str,
    over: &super::known::Oversize,
    log_path: &str,
) -> Result<(), ToolError> {
    let message = over.message();
    ctx.write_log(
        log_path,
        message.clone(),
        EntryState::Failed,
        Some(over.outcome()),
        None,
        json!({ "path": path, "error": message }),
    )
    .await?;
    Ok(())
}

/// The entries an edit applies to: the one entry at a literal path, or
/// every match of a pattern whose body passes the `body` attribute.
async fn edit_targets(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
) -> Result<Vec<EntryRow>, ToolError> {
    if !is_pattern(path) {
        return Ok(entry(ctx, path).await?.into_iter().collect());
    }
    let filter = cmd.attr("body").filter(|b| !b.is_empty());
    let mut rows = Vec::new();
    for m in matching(ctx, path, filter).await? {
        if let Some(row) = entry(ctx, &m.path).await? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// An edit form applied to the existing body of each target. All or
/// nothing: one target the edit does not fit (no match, an ambiguous
/// match, a body past the size gate) fails the command and leaves every
/// target unchanged.
async fn edit(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
    detected: Detected,
    log_path: &str,
) -> Result<(), ToolError> {
    let targets = edit_targets(ctx, cmd, path).await?;
    if targets.is_empty() {
        let error = format!("{path} not found in context");
        ctx.write_log(
            log_path,
            "",
            EntryState::Failed,
            Some("not_found".into()),
            None,
            json!({ "path": path, "error": error }),
        )
        .await?;
        return Ok(());
    }
    let edit = detected.into_edit(&cmd.body);
    let merge = edit_merge(&edit);
    let divisor = ctx.config.token_divisor;
    let mut edited = Vec::with_capacity(targets.len());
    for row in &targets {
        let before = count_tokens(&row.body, divisor);
        let applied = match hedberg::apply(&row.body, &edit) {
            Ok(applied) => applied,
            Err(e) => {
                let mut attributes = json!({
                    "path": row.path,
                    "error": e.to_string(),
                    "beforeTokens": before,
                    "afterTokens": before,
                });
                if let (Some(m), Value::Object(map)) = (&merge, &mut attributes) {
                    map.insert("merge".into(), Value::String(m.clone()));
                }
                ctx.write_log(
                    log_path,
                    row.body.clone(),
                    EntryState::Failed,
                    Some("conflict".into()),
                    None,
                    attributes,
                )
                .await?;
                return Ok(());
            }
        };
        if let Some(over) = size_gate(&ctx.config, &row.path, &applied.body) {
            return refuse_oversize(ctx, &row.path, &over, log_path).await;
        }
        edited.push((row, applied));
    }

    let visibility = cmd.attr("visibility");
    let summary = summary_attr(cmd);
    let mut warnings = Vec::new();
    for (row, applied) in &edited {
        ctx.store
            .run(SetEntry(EntryWrite {
                body: Some(applied.body.clone()),
                state: Some(row.state),
                visibility: visibility.map(str::to_string),
                turn: ctx.turn,
                loop_id: Some(ctx.loop_id),
                ..EntryWrite::new(ctx.run_id, row.path.clone(), Writer::Model)
            }))
            .await?;
        if let Some(s) = &summary {
            ctx.store
                .run(SetEntry(EntryWrite {
                    attributes: Some(json!({ "summary": s })),
                    ..EntryWrite::new(ctx.run_id, row.path.clone(), Writer::Model)
                }))
                .await?;
        }
        warnings.extend(applied.warnings.iter().cloned());
    }

    let mut attributes = Map::new();
    let body = match edited.as_slice() {
        [(row, applied)] => {
            attributes.insert("path".into(), Value::String(row.path.clone()));
            attributes.insert(
                "patch".into(),
                Value::String(hedberg::unified_diff(&row.path, &row.body, &applied.body)),
            );
            attributes.insert(
                "beforeTokens".into(),
                json!(count_tokens(&row.body, divisor)),
            );
            attributes.insert(
                "afterTokens".into(),
                json!(count_tokens(&applied.body, divisor)),
            );
            applied.body.clone()
        }
        many => {
            attributes.insert("path".into(), Value::String(path.to_string()));
            let after: Vec<_> = many
                .iter()
                .map(|(row, applied)| Match {
                    path: row.path.clone(),
                    tokens: count_tokens(&applied.body, divisor),
                })
                .collect();
            let filter = cmd.attr("body").filter(|b| !b.is_empty());
            listing("set", path, filter, &after, false)
        }
    };
    if let Some(m) = merge {
        attributes.insert("merge".into(), Value::String(m));
    }
    if let Some(s) = summary {
        attributes.insert("summary".into(), Value::String(s));
    }
    if !warnings.is_empty() {
        attributes.insert("warning".into(), Value::String(warnings.join("\n")));
    }
    ctx.write_log(
        log_path,
        body,
        EntryState::Resolved,
        None,
        None,
        Value::Object(attributes),
    )
    .await?;
    Ok(())
}

/// A glob path or a `filter` attribute replaces the body of every match
/// (upstream writes a literal entry named by the glob instead, a defect).
async fn bulk_write(
    ctx: &TurnCtx,
    path: &str,
    filter: Option<&str>,
    text: String,
    visibility: Option<&str>,
    log_path: &str,
) -> Result<(), ToolError> {
    let before = matching(ctx, path, filter).await?;
    let changed = ctx
        .store
        .run(SetByPattern {
            run_id: ctx.run_id,
            pattern: path.to_string(),
            body_filter: filter.map(str::to_string),
            body: Some(text),
            visibility: visibility.map(str::to_string),
            writer: Writer::Model,
        })
        .await?;
    let attributes = json!({ "path": path, "filter": filter });
    // Worded as upstream's pattern listing, with the tokens each match had.
    let listed: Vec<Match> = before
        .into_iter()
        .filter(|m| changed.contains(&m.path))
        .collect();
    let body = listing("set", path, filter, &listed, false);
    log_matches(ctx, log_path, path, &changed, body, None, attributes).await
}

/// Logs a command that acted on the entries matching `path`: the given
/// body when something matched, `{path} not found` (failed) otherwise.
async fn log_matches(
    ctx: &TurnCtx,
    log_path: &str,
    path: &str,
    matched: &[String],
    body: String,
    visibility: Option<&str>,
    attributes: Value,
) -> Result<(), ToolError> {
    let (body, state, outcome) = if matched.is_empty() {
        (
            format!("{path} not found"),
            EntryState::Failed,
            Some("not_found".into()),
        )
    } else {
        (body, EntryState::Resolved, None)
    };
    ctx.write_log(log_path, body, state, outcome, visibility, attributes)
        .await?;
    Ok(())
}

async fn invalid_visibility(
    ctx: &TurnCtx,
    path: &str,
    v: &str,
    log_path: &str,
) -> Result<(), ToolError> {
    let message = format!(
        "Invalid visibility \"{v}\" on <set path=\"{path}\"/>. Use visibility=\"visible|summarized|archived\"."
    );
    ctx.log_error(message.clone(), 400).await?;
    ctx.write_log(
        log_path,
        "",
        EntryState::Failed,
        Some("validation".into()),
        None,
        json!({ "path": path, "error": message }),
    )
    .await?;
    Ok(())
}

/// A body-less `<set>`: the visibility (and `summary`, if given) of every
/// match changes; the log entry is archived at once.
async fn change_visibility(
    ctx: &TurnCtx,
    cmd: &Command,
    path: &str,
    v: &str,
    log_path: &str,
) -> Result<(), ToolError> {
    if !VISIBILITIES.contains(&v) {
        return invalid_visibility(ctx, path, v, log_path).await;
    }
    let changed = ctx
        .store
        .run(ChangeVisibility {
            run_id: ctx.run_id,
            pattern: path.to_string(),
            body_filter: None,
            visibility: v.to_string(),
            promote_turn: None,
        })
        .await?;
    let summary = summary_attr(cmd);
    if let Some(s) = &summary {
        for p in &changed {
            ctx.store
                .run(SetEntry(EntryWrite {
                    attributes: Some(json!({ "summary": s })),
                    ..EntryWrite::new(ctx.run_id, p.clone(), Writer::Model)
                }))
                .await?;
        }
    }
    let attributes = json!({ "path": path, "visibility": v });
    let listing = format!("{} set to {v}", changed.join(", "));
    log_matches(
        ctx,
        log_path,
        path,
        &changed,
        listing,
        Some("archived"),
        attributes,
    )
    .await
}

#[cfg(test)]
mod tests;

mod file;

/// The body with whitespace runs collapsed to single spaces, whole when
/// that is at most 80 characters, else its first 77 and "...". Stops
/// after the 81st character: the summary of a long write costs what the
/// summary shows, not the write's length.
fn collapsed_preview(body: &str) -> String {
    const WHOLE: usize = 80;
    const CUT: usize = 77;
    let mut out = String::with_capacity(WHOLE + 4);
    let mut chars = 0;
    let mut cut_at = None;
    for word in body.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
            if chars == CUT {
                cut_at = Some(out.len());
            }
        }
        for c in word.chars() {
            if chars > WHOLE {
                break;
            }
            out.push(c);
            chars += 1;
            if chars == CUT {
                cut_at = Some(out.len());
            }
        }
        if chars > WHOLE {
            break;
        }
    }
    if chars > WHOLE {
        out.truncate(cut_at.unwrap_or(out.len()));
        out.push_str("...");
    }
    out
}
