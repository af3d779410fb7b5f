//! The packet's sections, in their order: system prompt and `<context>`;
//! then `<log>`, `<unknowns>`, `<instructions>`, `<budget>`, `<prompt>`.

use super::{status_of, ProjectedRow, Ranked};
use crate::fast_map::{self, FastMap};
use crate::store::paths::scheme_of;
use crate::store::EntryState;
use crate::tools::{Mode, ToolRegistry, ToolSet};
use std::borrow::Cow;
use std::fmt::Write;

const TEMPLATE: &str = include_str!("../../config/prompts/instructions.md");

/// Stage instructions by phase digit (spec 02 §2); 6 and 7 have none.
fn phase_text(phase: i64) -> Option<&'static str> {
    match phase {
        4 => Some(include_str!("../../config/prompts/phase_104.md")),
        5 => Some(include_str!("../../config/prompts/phase_105.md")),
        8 => Some(include_str!("../../config/prompts/phase_108.md")),
        _ => None,
    }
}

/// Strips HTML comments and runs of blank lines from a doc.
fn clean_doc(doc: &str) -> String {
    let mut text = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(start) = rest.find("<!--") {
        text.push_str(&rest[..start]);
        rest = match rest[start..].find("-->") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    text.push_str(rest);
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim().to_string()
}

/// The system prompt: template with the offered tools and their docs (in
/// display order), then persona.
pub fn system_prompt(tools: &ToolRegistry, set: &ToolSet, persona: Option<&str>) -> String {
    let advertised = tools.advertised(set);
    let names: Vec<String> = advertised
        .iter()
        .map(|t| format!("<{}/>", t.name()))
        .collect();
    let docs: Vec<String> = advertised
        .iter()
        .filter_map(|t| t.doc())
        .map(clean_doc)
        .collect();
    let mut prompt = TEMPLATE
        .replacen("[%TOOLS%]", &names.join(", "), 1)
        .replacen("[%TOOLDOCS%]", &docs.join("\n\n"), 1);
    if let Some(p) = persona.filter(|p| !p.trim().is_empty()) {
        let _ = write!(prompt, "\n\n## Persona\n\n{p}");
    }
    prompt
}

fn tag_for(row: &ProjectedRow) -> &str {
    row.scheme.as_deref().unwrap_or("file")
}

fn element(tag: &str, attrs: &str, body: &str) -> String {
    if body.is_empty() {
        format!("<{tag}{attrs}/>")
    } else {
        format!("<{tag}{attrs}>{body}</{tag}>")
    }
}

fn summary_attr(row: &ProjectedRow) -> String {
    let s = row
        .attributes
        .get("summary")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .replace('"', "'");
    s.chars().take(80).collect()
}

fn attr_status(row: &ProjectedRow) -> i64 {
    row.attributes
        .get("status")
        .and_then(|v| v.as_i64())
        .unwrap_or_else(|| status_of(row.state, row.outcome.as_deref()))
}

/// A row's `<context>` item (data rows): a function of the row alone.
pub(crate) fn context_item(r: &ProjectedRow) -> String {
    let mut a = format!(" path=\"{}\"", r.path);
    if r.turn != 0 {
        let _ = write!(a, " turn=\"{}\"", r.turn);
    }
    let status = attr_status(r);
    if status != 200 {
        let _ = write!(a, " status=\"{status}\"");
    }
    if r.state != EntryState::Resolved {
        let _ = write!(a, " state=\"{}\"", r.state);
    }
    if let Some(o) = &r.outcome {
        let _ = write!(a, " outcome=\"{o}\"");
    }
    let _ = write!(
        a,
        " summary=\"{}\" visibility=\"{}\" tokens=\"{}\"",
        summary_attr(r),
        r.visibility,
        r.a_tokens
    );
    element(tag_for(r), &a, &r.body)
}

/// `<context>` of data rows, appended to the system message.
pub fn context_block(rows: &[Ranked<'_>]) -> String {
    let items: Vec<Cow<str>> = rows
        .iter()
        .filter(|r| r.category == "data")
        .map(|r| match r.render.and_then(|x| x.context.as_deref()) {
            Some(item) => Cow::Borrowed(item),
            None => Cow::Owned(context_item(r)),
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!("\n\n<context>\n{}\n</context>", items.join("\n"))
    }
}

fn block<S: AsRef<str>>(tag: &str, items: Vec<S>) -> String {
    if items.is_empty() {
        String::new()
    } else {
        let mut out = format!("<{tag}>\n");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(item.as_ref());
        }
        let _ = write!(out, "\n</{tag}>\n");
        out
    }
}

fn latest_prompt<'r>(rows: &'r [Ranked<'_>]) -> Option<&'r Ranked<'r>> {
    rows.iter()
        .filter(|r| scheme_of(&r.path) == Some("prompt"))
        .max_by_key(|r| (r.turn, r.ordinal))
}

/// A row's `<log>` item but for its tokens figure, which comes from its
/// target's row: everything else is a function of the row alone.
#[derive(Debug, Clone)]
pub struct LogItem {
    /// The opening tag up to where `tokens` goes.
    open: String,
    /// `/>`, or `>` body and the closing tag.
    close: String,
    /// The target whose cost the item shows (not for slice reads).
    target: Option<String>,
    /// Commands show no tokens: their cost lies in their channels.
    shows_tokens: bool,
}

/// Whether a row can be a `<log>` item: an action record, or a prompt
/// (all but the latest prompt are).
fn loggable(r: &ProjectedRow) -> bool {
    let scheme = scheme_of(&r.path);
    (r.category == "logging" && scheme == Some("log")) || scheme == Some("prompt")
}

pub(crate) fn log_item(r: &ProjectedRow) -> LogItem {
    let tag = if scheme_of(&r.path) == Some("prompt") {
        "prompt"
    } else {
        super::projection_key(&r.path)
    };
    let mut a = format!("<{tag} path=\"{}\"", r.path);
    let target = r.attributes.get("path").and_then(|v| v.as_str());
    if let Some(t) = target {
        let _ = write!(a, " target=\"{t}\"");
    }
    let _ = write!(a, " status=\"{}\"", attr_status(r));
    if let Some(o) = &r.outcome {
        let _ = write!(a, " outcome=\"{o}\"");
    }
    if let Some(c) = r.attributes.get("command").and_then(|v| v.as_str()) {
        let _ = write!(a, " command=\"{c}\"");
    }
    let summary = summary_attr(r);
    if !summary.is_empty() {
        let _ = write!(a, " summary=\"{summary}\"");
    }
    // A slice read (`<get line/limit>`): its range, and its own tokens
    // rather than the whole target's.
    let slice = r.attributes.get("lineStart");
    if let Some(start) = slice {
        let end = r
            .attributes
            .get("lineEnd")
            .unwrap_or(&serde_json::Value::Null);
        let total = r
            .attributes
            .get("totalLines")
            .unwrap_or(&serde_json::Value::Null);
        let _ = write!(a, " lines=\"{start}-{end}/{total}\"");
    }
    let close = if r.body.is_empty() {
        "/>".to_string()
    } else {
        format!(">{}</{tag}>", r.body)
    };
    LogItem {
        open: a,
        close,
        target: target.filter(|_| slice.is_none()).map(str::to_string),
        shows_tokens: !matches!(tag, "sh" | "env"),
    }
}

/// `<log>`: this run's action records and earlier prompts.
pub fn log_block(rows: &[Ranked<'_>]) -> String {
    let latest = latest_prompt(rows).map(|r| r.path.as_str());
    // A log row shows its target's cost; an index keeps that lookup from
    // making the block quadratic in the run's length. The first row of a
    // path wins, as a linear search would find it.
    let mut cost_of: FastMap<&str, i64> = fast_map::with_capacity(rows.len());
    for r in rows {
        cost_of.entry(r.path.as_str()).or_insert(r.a_tokens);
    }
    let mut out = String::new();
    let logged = rows.iter().filter(|r| {
        let scheme = scheme_of(&r.path);
        (r.category == "logging" && scheme == Some("log"))
            || (scheme == Some("prompt") && Some(r.path.as_str()) != latest)
    });
    for r in logged {
        let owned;
        let item = match r.render.and_then(|x| x.log.as_ref()) {
            Some(item) => item,
            None => {
                owned = log_item(r);
                &owned
            }
        };
        out.push_str(if out.is_empty() { "<log>\n" } else { "\n" });
        out.push_str(&item.open);
        if item.shows_tokens {
            let tokens = item
                .target
                .as_deref()
                .and_then(|t| cost_of.get(t).copied())
                .unwrap_or(r.a_tokens);
            let _ = write!(out, " tokens=\"{tokens}\"");
        }
        out.push_str(&item.close);
    }
    if !out.is_empty() {
        out.push_str("\n</log>\n");
    }
    out
}

/// What a row's section items are, computed once per row version (see
/// `context::derived`); sections render a row without one afresh.
#[derive(Debug, Clone, Default)]
pub struct RowRender {
    pub context: Option<String>,
    pub log: Option<LogItem>,
}

impl RowRender {
    pub fn of(r: &ProjectedRow) -> RowRender {
        RowRender {
            context: (r.category == "data").then(|| context_item(r)),
            log: loggable(r).then(|| log_item(r)),
        }
    }
}

/// `<unknowns>`: what the model has said it does not know yet.
pub fn unknowns_block(rows: &[Ranked<'_>]) -> String {
    let items = rows
        .iter()
        .filter(|r| r.category == "unknown")
        .map(|r| {
            let mut a = format!(" path=\"{}\"", r.path);
            if r.turn != 0 {
                let _ = write!(a, " turn=\"{}\"", r.turn);
            }
            let summary = summary_attr(r);
            if !summary.is_empty() {
                let _ = write!(a, " summary=\"{summary}\"");
            }
            let _ = write!(
                a,
                " visibility=\"{}\" tokens=\"{}\"",
                r.visibility, r.a_tokens
            );
            element("unknown", &a, &r.body)
        })
        .collect();
    block("unknowns", items)
}

/// The phase digit from the newest update in view (spec 02 §2).
pub fn current_phase(rows: &[Ranked<'_>]) -> i64 {
    let newest = rows
        .iter()
        .filter_map(|r| {
            let rest = r.path.strip_prefix("log://turn_")?;
            let (turn, rest) = rest.split_once('/')?;
            rest.starts_with("update/")
                .then(|| (turn.parse::<i64>().unwrap_or(0), attr_status(r)))
        })
        .max();
    match newest {
        None => 4,
        Some((_, 200)) => 8,
        Some((_, status)) if (4..=9).contains(&(status % 10)) => status % 10,
        Some(_) => 4,
    }
}

/// `<instructions>`: the current stage's text.
pub fn instructions_block(rows: &[Ranked<'_>]) -> String {
    match phase_text(current_phase(rows)).map(str::trim) {
        Some(text) if !text.is_empty() => format!("<instructions>\n{text}\n</instructions>\n"),
        _ => String::new(),
    }
}

fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        0
    } else {
        ((part as f64) * 100.0 / whole as f64).round() as i64
    }
}

/// Upstream's `<budget>` tokenUsage: Σ sTokens + Σ aTokens of visible rows
/// + the system prompt.
pub fn row_usage(rows: &[Ranked<'_>], system_tokens: i64) -> i64 {
    let floor: i64 = rows.iter().map(|r| r.s_tokens).sum();
    let premium: i64 = rows
        .iter()
        .filter(|r| r.visibility == "visible")
        .map(|r| r.a_tokens)
        .sum();
    floor + premium + system_tokens
}

/// `<budget>`: what the visible context costs against the ceiling.
/// `usage` is the packet size the budget check enforces, so the model
/// reads the figure it is held to.
pub fn budget_block(rows: &[Ranked<'_>], ceiling: i64, system_tokens: i64, usage: i64) -> String {
    let free = (ceiling - usage).max(0);
    let mut by_scheme: Vec<(&str, i64, i64)> = Vec::new();
    for r in rows.iter().filter(|r| r.visibility == "visible") {
        let scheme = tag_for(r);
        match by_scheme.iter_mut().find(|(s, _, _)| *s == scheme) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += r.a_tokens;
            }
            None => by_scheme.push((scheme, 1, r.a_tokens)),
        }
    }
    by_scheme.sort_by_key(|entry| std::cmp::Reverse(entry.2));
    let visible_count: i64 = by_scheme.iter().map(|(_, n, _)| n).sum();
    let summarized: Vec<&Ranked> = rows
        .iter()
        .filter(|r| r.visibility == "summarized")
        .collect();
    let summarized_tokens: i64 = summarized.iter().map(|r| r.s_tokens).sum();
    let mut out = format!(
        "<budget tokenUsage=\"{usage}\" tokensFree=\"{free}\">\n| scheme | visible | tokens | % |\n|---|---|---|---|\n"
    );
    for (scheme, count, tokens) in &by_scheme {
        let _ = writeln!(
            out,
            "| {scheme} | {count} | {tokens} | {}% |",
            percent(*tokens, ceiling)
        );
    }
    let _ = write!(
        out,
        "\nSummarized: {} entries, {summarized_tokens} tokens ({}% of budget).\n\
         System: {system_tokens} tokens ({}% of budget).\n\
         Total: {visible_count} visible + {} summarized entries; tokenUsage {usage} / ceiling {ceiling}. {free} tokens free.\n\
         </budget>\n",
        summarized.len(),
        percent(summarized_tokens, ceiling),
        percent(system_tokens, ceiling),
        summarized.len(),
    );
    out
}

/// `reverted="N"`: how many promotions the previous turn's Turn Demotion
/// took back (its 413 error entry's `demotedCount`).
pub fn reverted_count(rows: &[Ranked<'_>], turn: i64) -> Option<i64> {
    let prefix = format!("log://turn_{}/error/", turn - 1);
    rows.iter()
        .filter(|r| r.path.starts_with(&prefix) && attr_status(r) == 413)
        .filter_map(|r| r.attributes.get("demotedCount").and_then(|v| v.as_i64()))
        .find(|n| *n > 0)
}

/// `<prompt>`: the loop's prompt and the commands on offer.
pub fn prompt_block(
    rows: &[Ranked<'_>],
    tools: &ToolRegistry,
    set: &ToolSet,
    reverted: Option<i64>,
) -> String {
    let mode = set.mode;
    let commands: Vec<&str> = tools.advertised(set).iter().map(|t| t.name()).collect();
    let prompt = latest_prompt(rows);
    let prompt_mode = prompt
        .and_then(|p| p.attributes.get("mode"))
        .and_then(|m| m.as_str())
        .unwrap_or(mode.as_str());
    let mut a = format!(" mode=\"{prompt_mode}\"");
    if let Some(p) = prompt {
        let _ = write!(a, " path=\"{}\"", p.path);
    }
    let _ = write!(a, " commands=\"{}\"", commands.join(","));
    if mode == Mode::Ask {
        a.push_str(" warn=\"File editing disallowed.\"");
    }
    if let Some(n) = reverted {
        let _ = write!(a, " reverted=\"{n}\"");
    }
    let body = match prompt {
        Some(p) => {
            let _ = write!(
                a,
                " visibility=\"{}\" tokens=\"{}\"",
                p.visibility, p.a_tokens
            );
            p.body.as_str()
        }
        None => "",
    };
    format!("<prompt{a}>{body}</prompt>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn row(path: &str, category: &str, visibility: &str, body: &str, attrs: Value) -> ProjectedRow {
        let attributes: Map<String, Value> = match attrs {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        ProjectedRow {
            path: path.into(),
            scheme: scheme_of(path).map(str::to_string),
            category: category.into(),
            visibility: visibility.into(),
            state: EntryState::Resolved,
            outcome: None,
            attributes,
            turn: 1,
            sort_key: "2".into(),
            body: body.into(),
            v_tokens: 2,
            s_tokens: 1,
            a_tokens: 1,
        }
    }

    fn ranked(rows: &[ProjectedRow]) -> Vec<Ranked<'_>> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| Ranked {
                ordinal: i as i64 + 1,
                row,
                render: None,
            })
            .collect()
    }

    #[test]
    fn system_prompt_lists_tools_once() {
        let tools = ToolRegistry::builtin();
        let p = system_prompt(&tools, &ToolSet::new(Mode::Ask, true), Some("Be terse."));
        assert!(p.starts_with(
            "Commands you can use: <think/>, <get/>, <set/>, <env/>, <rm/>, <cp/>, <mv/>, <ask_user/>, <update/>\n"
        ));
        assert!(
            p.contains("## <env>") && !p.contains("## <sh>"),
            "ask mode offers env, not sh"
        );
        assert!(p.contains("## <think>") && p.contains("## <update "));
        let quiet = system_prompt(&tools, &ToolSet::new(Mode::Ask, false), None);
        assert!(quiet.starts_with(
            "Commands you can use: <get/>, <set/>, <env/>, <rm/>, <cp/>, <mv/>, <ask_user/>, <update/>\n"
        ));
        assert!(
            !quiet.contains("## <think>"),
            "an unoffered tool's doc is left out"
        );
        assert!(!p.contains("[%TOOLS%]") && !p.contains("[%TOOLDOCS%]"));
        assert!(p.ends_with("## Persona\n\nBe terse."));
    }

    #[test]
    fn reverted_reads_the_previous_turns_demotion() {
        let mut err = row(
            "log://turn_4/error/Token",
            "logging",
            "visible",
            "x",
            json!({"status": 413, "demotedCount": 3, "demotedTokens": 90}),
        );
        err.state = EntryState::Failed;
        let rows = vec![err];
        let rows = ranked(&rows);
        assert_eq!(reverted_count(&rows, 5), Some(3));
        assert_eq!(
            reverted_count(&rows, 6),
            None,
            "only the turn before counts"
        );
        let tools = ToolRegistry::builtin();
        let prompt = prompt_block(&rows, &tools, &ToolSet::new(Mode::Act, false), Some(3));
        assert!(prompt.contains(" reverted=\"3\""), "{prompt}");
        let none = vec![row(
            "log://turn_4/error/Token",
            "logging",
            "visible",
            "x",
            json!({"status": 413, "demotedCount": 0}),
        )];
        assert_eq!(reverted_count(&ranked(&none), 5), None);
    }

    #[test]
    fn phases() {
        assert_eq!(current_phase(&[]), 4);
        let update = |s: i64| {
            row(
                "log://turn_2/update/x",
                "logging",
                "visible",
                "",
                json!({"status": s}),
            )
        };
        for (status, phase) in [(200, 8), (155, 5), (102, 4)] {
            let rows = [update(status)];
            assert_eq!(current_phase(&ranked(&rows)), phase);
        }
    }

    #[test]
    fn blocks_render_their_rows() {
        let rows = vec![
            row(
                "known://a",
                "data",
                "visible",
                "A",
                json!({"summary": "x\"y"}),
            ),
            row(
                "log://turn_1/set/known%3A//a",
                "logging",
                "visible",
                "# set known://a",
                json!({"path": "known://a"}),
            ),
            row("unknown://q", "unknown", "summarized", "Q?", json!({})),
            row(
                "prompt://1",
                "prompt",
                "visible",
                "What?",
                json!({"mode": "ask"}),
            ),
        ];
        let renders: Vec<RowRender> = rows.iter().map(RowRender::of).collect();
        let ahead: Vec<Ranked> = ranked(&rows)
            .into_iter()
            .zip(&renders)
            .map(|(r, render)| Ranked {
                render: Some(render),
                ..r
            })
            .collect();
        let rows = ranked(&rows);
        assert_eq!(context_block(&ahead), context_block(&rows));
        assert_eq!(log_block(&ahead), log_block(&rows));
        let context = context_block(&rows);
        assert!(context.contains(
            "<known path=\"known://a\" turn=\"1\" summary=\"x'y\" visibility=\"visible\" tokens=\"1\">A</known>"
        ));
        let log = log_block(&rows);
        assert!(log.starts_with(
            "<log>\n<set path=\"log://turn_1/set/known%3A//a\" target=\"known://a\" status=\"200\""
        ));
        assert!(unknowns_block(&rows)
            .contains("<unknown path=\"unknown://q\" turn=\"1\" visibility=\"summarized\""));
        let tools = ToolRegistry::builtin();
        let prompt = prompt_block(&rows, &tools, &ToolSet::new(Mode::Ask, false), None);
        assert_eq!(
            prompt,
            "<prompt mode=\"ask\" path=\"prompt://1\" commands=\"get,set,env,rm,cp,mv,ask_user,update\" warn=\"File editing disallowed.\" visibility=\"visible\" tokens=\"1\">What?</prompt>"
        );
        assert_eq!(row_usage(&rows, 10), 17);
        let budget = budget_block(&rows, 100, 10, 17);
        assert!(
            budget.starts_with("<budget tokenUsage=\"17\" tokensFree=\"83\">"),
            "{budget}"
        );
        assert!(budget.ends_with("tokenUsage 17 / ceiling 100. 83 tokens free.\n</budget>\n"));
    }
}
