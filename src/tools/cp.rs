//! `<cp path="SRC">DEST</cp>` (or `to="DEST"`): copy an entry, or every
//! match of a glob, to scheme paths. Also the copy both `cp` and `mv` run.
//!
//! Destination rule for a glob source: the glob's literal prefix is the
//! text before its first `*`, `?` or `[`; each match is written to DEST
//! followed by the rest of the match after that prefix. So
//! `<cp path="known://plan_*">known://archive/</cp>` copies `known://plan_a`
//! to `known://archive/a`. An exact source is written to DEST itself.

use super::known::size_gate;
use super::rm::{attrs, fail, find_matches, preview_body, tokens_of};
use super::{ProjectionRow, Tool, ToolError, TurnCtx};
use crate::parse::Command;
use crate::store::paths::{normalize_path, scheme_of};
use crate::store::patterns::{is_pattern, Pattern};
use crate::store::{CopyEntries, CopyPair, EntryState, SourceMatch, Writer, VISIBILITIES};
use serde_json::{json, Map, Value};

pub struct Cp;

/// The part of a glob before its first wildcard.
pub(super) fn literal_prefix(glob: &str) -> &str {
    match glob.find(['*', '?', '[']) {
        Some(i) => &glob[..i],
        None => glob,
    }
}

/// Where one match goes: DEST itself for an exact source, else DEST plus
/// the match's path after the glob's literal prefix.
pub(super) fn destination_of(source: &str, is_glob: bool, dest: &str, matched: &str) -> String {
    if !is_glob {
        return dest.to_string();
    }
    let rest = matched
        .strip_prefix(literal_prefix(source))
        .unwrap_or(matched);
    format!("{dest}{rest}")
}

/// The destination: the `to` attribute, else the trimmed tag text.
pub(super) fn destination(cmd: &Command) -> Option<String> {
    if let Some(to) = cmd.attr("to").filter(|t| !t.is_empty()) {
        return Some(to.to_string());
    }
    let text = crate::hedberg::js_trim(&cmd.body);
    (!text.is_empty()).then(|| text.to_string())
}

/// `# cp {from} {to}` (upstream's projection), then what the model needs
/// beyond it: the error of a failed entry, or a listing (glob, preview,
/// visibility change).
pub(super) fn project(tool: &str, row: &ProjectionRow) -> String {
    let header = match (row.attr("from"), row.attr("to")) {
        (Some(from), Some(to)) => format!("# {tool} {from} {to}"),
        _ => format!("# {tool} {}", row.attr("path").unwrap_or(row.path)),
    };
    if let Some(error) = row.attr("error") {
        return format!("{header}\n{error}");
    }
    let plain = match (row.attr("from"), row.attr("to")) {
        (Some(from), Some(to)) => row.body == format!("{from} {to}"),
        _ => false,
    };
    if row.body.is_empty() || plain {
        header
    } else {
        format!("{header}\n{}", row.body)
    }
}

fn overwrite_warning(dest: &str, is_glob: bool, overwritten: &[String]) -> Value {
    match overwritten {
        [] => Value::Null,
        [_] if !is_glob => json!(format!("Overwrote existing entry at {dest}")),
        [one] => json!(format!("Overwrote existing entry at {one}")),
        many => json!(format!("Overwrote existing entries at {}", many.join(", "))),
    }
}

/// The whole of `<cp>` and of `<mv>` with a destination.
pub(super) async fn copy_or_move(
    ctx: &TurnCtx,
    cmd: &Command,
    log_path: &str,
    is_move: bool,
    source: String,
    visibility: Option<&str>,
) -> Result<(), ToolError> {
    let tool = if is_move { "mv" } else { "cp" };
    let Some(dest) = destination(cmd) else {
        let error =
            format!("destination is required: <{tool} path=\"{source}\">destination</{tool}>");
        return fail(
            ctx,
            log_path,
            "validation",
            error,
            attrs(&[("path", json!(source))]),
        )
        .await;
    };
    let base = |warning: Value| {
        attrs(&[
            ("from", json!(source)),
            ("to", json!(dest)),
            ("isMove", json!(is_move)),
            ("warning", warning),
        ])
    };
    if is_pattern(&dest) {
        let error = format!(
            "destination must be a path, not a pattern ({dest}); with a glob source each match goes to the destination plus the rest of its path after the glob's literal prefix"
        );
        return fail(ctx, log_path, "validation", error, base(Value::Null)).await;
    }
    let kind = Pattern::compile(&source).kind();
    let is_glob = is_pattern(&source) && kind == "glob";
    if is_pattern(&source) && !matches!(kind, "glob" | "literal") {
        let error =
            format!("{tool} takes an exact path or a glob as its source, not a {kind} pattern");
        return fail(ctx, log_path, "validation", error, base(Value::Null)).await;
    }
    let filter = cmd.attr("body").filter(|b| !b.is_empty());
    let matches = find_matches(ctx, &source, filter).await?;
    let targets: Vec<(&SourceMatch, String)> = matches
        .iter()
        .map(|m| (m, destination_of(&source, is_glob, &dest, &m.path)))
        .collect();
    if cmd.preview() {
        let total = matches.iter().map(|m| tokens_of(ctx, m)).sum();
        let lines: Vec<String> = targets
            .iter()
            .map(|(m, to)| format!("{} → {to} ({})", m.path, tokens_of(ctx, m)))
            .collect();
        let body = preview_body(tool, &source, filter, total, &lines);
        ctx.write_log(
            log_path,
            body,
            EntryState::Resolved,
            None,
            None,
            Value::Object(base(Value::Null)),
        )
        .await?;
        return Ok(());
    }
    if matches.is_empty() {
        // Upstream returns without a log entry (spec 02 §3.3 defect).
        let error = format!("{source} not found");
        return fail(ctx, log_path, "not_found", error, base(Value::Null)).await;
    }
    if let Some((m, _)) = targets
        .iter()
        .find(|(m, to)| normalize_path(&m.path) == normalize_path(to))
    {
        let error = format!("source and destination are the same path ({})", m.path);
        return fail(ctx, log_path, "validation", error, base(Value::Null)).await;
    }
    for (m, to) in &targets {
        if let Some(over) = size_gate(&ctx.config, to, &m.body) {
            return fail(
                ctx,
                log_path,
                &over.outcome(),
                over.message(),
                base(Value::Null),
            )
            .await;
        }
    }
    if touches_files(&targets) {
        return propose(ctx, log_path, is_glob, &source, &dest, &targets, base).await;
    }
    let overwritten = ctx
        .store
        .run(CopyEntries {
            run_id: ctx.run_id,
            pairs: targets
                .iter()
                .map(|(m, to)| CopyPair {
                    from: m.path.clone(),
                    to: to.clone(),
                    body: m.body.clone(),
                })
                .collect(),
            visibility: visibility.map(str::to_string),
            turn: ctx.turn,
            loop_id: Some(ctx.loop_id),
            writer: Writer::Model,
            remove_sources: is_move,
        })
        .await?;
    let body = if is_glob {
        targets
            .iter()
            .map(|(m, to)| format!("{} {to}", m.path))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        format!("{source} {dest}")
    };
    let warning = overwrite_warning(&dest, is_glob, &overwritten);
    ctx.write_log(
        log_path,
        body,
        EntryState::Resolved,
        None,
        None,
        Value::Object(base(warning)),
    )
    .await?;
    Ok(())
}

fn touches_files(targets: &[(&SourceMatch, String)]) -> bool {
    targets
        .iter()
        .any(|(m, to)| m.scheme.is_none() || scheme_of(to).is_none())
}

/// A copy or move that touches project files waits for a client's
/// decision: one proposal for the whole command, body `{SRC} {DEST}` (one
/// line per match for a glob), attrs `{from, to, isMove, warning}` plus
/// `pairs` (each match and its destination) for a glob.
async fn propose(
    ctx: &TurnCtx,
    log_path: &str,
    is_glob: bool,
    source: &str,
    dest: &str,
    targets: &[(&SourceMatch, String)],
    base: impl Fn(Value) -> Map<String, Value>,
) -> Result<(), ToolError> {
    let mut attributes = base(Value::Null);
    let body = if is_glob {
        let pairs: Vec<Value> = targets.iter().map(|(m, to)| json!([m.path, to])).collect();
        attributes.insert("pairs".into(), Value::Array(pairs));
        targets
            .iter()
            .map(|(m, to)| format!("{} {to}", m.path))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        format!("{source} {dest}")
    };
    ctx.write_log(
        log_path,
        body,
        EntryState::Proposed,
        None,
        None,
        Value::Object(attributes),
    )
    .await?;
    Ok(())
}

/// The source (`path` attribute) and a valid `visibility`; a bad one fails
/// the entry (upstream ignores it).
pub(super) async fn source_and_visibility<'a>(
    ctx: &TurnCtx,
    cmd: &'a Command,
    log_path: &str,
    tool: &str,
) -> Result<Option<(String, Option<&'a str>)>, ToolError> {
    let Some(source) = cmd.attr("path").filter(|p| !p.is_empty()) else {
        fail(ctx, log_path, "validation", "path is required", Map::new()).await?;
        return Ok(None);
    };
    let visibility = cmd.attr("visibility");
    if let Some(v) = visibility.filter(|v| !VISIBILITIES.contains(v)) {
        let error = format!(
            "Invalid visibility \"{v}\" on <{tool} path=\"{source}\"/>. Use visibility=\"visible|summarized|archived\"."
        );
        fail(
            ctx,
            log_path,
            "validation",
            error,
            attrs(&[("path", json!(source))]),
        )
        .await?;
        return Ok(None);
    }
    Ok(Some((source.to_string(), visibility)))
}

#[async_trait::async_trait]
impl Tool for Cp {
    fn name(&self) -> &'static str {
        "cp"
    }
    fn doc(&self) -> Option<&'static str> {
        Some(include_str!("../../config/prompts/tool_cp.md"))
    }
    fn visible(&self, row: &ProjectionRow) -> String {
        project("cp", row)
    }
    async fn dispatch(
        &self,
        ctx: &TurnCtx,
        cmd: &Command,
        log_path: &str,
    ) -> Result<(), ToolError> {
        let Some((source, visibility)) = source_and_visibility(ctx, cmd, log_path, "cp").await?
        else {
            return Ok(());
        };
        copy_or_move(ctx, cmd, log_path, false, source, visibility).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_destinations_append_the_rest_after_the_literal_prefix() {
        assert_eq!(literal_prefix("known://plan_*"), "known://plan_");
        assert_eq!(literal_prefix("known://*"), "known://");
        assert_eq!(literal_prefix("known://a?c"), "known://a");
        assert_eq!(
            destination_of("known://plan_*", true, "known://archive/", "known://plan_a"),
            "known://archive/a"
        );
        assert_eq!(
            destination_of("known://*", true, "known://old/", "known://a/b"),
            "known://old/a/b"
        );
        assert_eq!(
            destination_of("known://x", false, "known://y", "known://x"),
            "known://y"
        );
    }
}
