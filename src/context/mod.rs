//! Context assembly: the model-visible rows of a run, projected through
//! their owners' views, rendered into the system and user messages.

pub mod budget;
pub mod derived;
pub mod sections;
// Token counting lives in `crate::tokens`, which the store uses too; re-exported here so
// `context::tokens` keeps naming it.
pub use crate::tokens;

use crate::store::paths::{log_action, scheme_of};
use crate::store::{ContextRow, EntryState, SnapshotRow, TurnContextRow};
use crate::tools::{truncated_summary, ProjectionRow, ToolRegistry, ToolSet};
pub use derived::{derive_rows, DerivedRow, DerivedRows};
use serde_json::{Map, Value};
use std::sync::Arc;
use tokens::{count_tokens, tokens_of_units, utf16_len};

/// Everything one packet is built from.
pub struct PacketInput<'a> {
    /// The model-visible rows in packet order, each with its projection.
    pub rows: &'a [Arc<DerivedRow>],
    pub tools: &'a ToolRegistry,
    /// The loop's mode, flags and `RUMMY_THINK`: which tools are offered.
    pub tool_set: ToolSet,
    pub persona: Option<&'a str>,
    pub context_size: Option<i64>,
    pub budget_ceiling: f64,
    pub token_divisor: f64,
    /// The run turn the packet is for (`reverted` reads the turn before).
    pub turn: i64,
    /// A lower bound on the packet's size from outside our count: the
    /// provider's `prompt_tokens` of the previous packet, else 0.
    pub usage_floor: i64,
}

/// The two messages plus the snapshot to store in `turn_context`.
#[derive(Debug, Clone)]
pub struct Packet {
    pub system: String,
    pub user: String,
    pub rows: Arc<[TurnContextRow]>,
    /// Tokens of both messages as we count them.
    pub assembled_tokens: i64,
    /// What the budget check enforces and `<budget>` shows:
    /// `max(assembled_tokens, usage_floor)`.
    pub total_tokens: i64,
    /// Tokens of the system prompt alone (without `<context>`).
    pub system_tokens: i64,
}

/// A row after projection, with its token figures.
#[derive(Debug, Clone)]
pub struct ProjectedRow {
    pub path: String,
    pub scheme: Option<String>,
    pub category: String,
    pub visibility: String,
    pub state: EntryState,
    pub outcome: Option<String>,
    pub attributes: Map<String, Value>,
    pub turn: i64,
    pub sort_key: String,
    /// The projection at the row's own visibility.
    pub body: String,
    pub v_tokens: i64,
    pub s_tokens: i64,
    /// What promoting costs: `v_tokens - s_tokens`.
    pub a_tokens: i64,
}

/// A projected row at its place in one packet (its ordinal, counted from
/// 1); the projection itself is shared by every packet that holds the row
/// unchanged.
#[derive(Debug, Clone, Copy)]
pub struct Ranked<'a> {
    pub ordinal: i64,
    pub row: &'a ProjectedRow,
    /// The row's section items, when computed ahead (else rendered here).
    pub render: Option<&'a sections::RowRender>,
}

impl std::ops::Deref for Ranked<'_> {
    type Target = ProjectedRow;
    fn deref(&self) -> &ProjectedRow {
        self.row
    }
}

/// The rows of `input` at their places.
fn ranked<'a>(rows: &'a [Arc<DerivedRow>]) -> Vec<Ranked<'a>> {
    rows.iter()
        .enumerate()
        .map(|(i, d)| Ranked {
            ordinal: i as i64 + 1,
            row: &d.projected,
            render: Some(&d.render),
        })
        .collect()
}

/// The key choosing a row's projection: the scheme, `file` for bare
/// paths, the action for `log://turn_N/{action}/...` rows.
pub fn projection_key(path: &str) -> &str {
    match scheme_of(path) {
        None => "file",
        Some("log") => log_action(path).unwrap_or("log"),
        Some(s) => s,
    }
}

fn project(tools: &ToolRegistry, key: &str, row: &ProjectionRow, visible: bool) -> String {
    if let Some(tool) = tools.get(key) {
        return if visible {
            tool.visible(row)
        } else {
            tool.summarized(row)
        };
    }
    match (key, visible) {
        // Schemes whose tools are not registered (a custom registry); their
        // rows exist already, so their entries project as spec 02 §1.5 says.
        ("sh" | "env", true) => format!(
            "# {key} {}\n{}",
            row.attr("command").unwrap_or_default(),
            row.body
        ),
        ("ask_user", true) => {
            let mut text = String::from("# ask_user");
            if let Some(q) = row.attr("question") {
                text.push_str(&format!("\n# Question: {q}"));
            }
            if let Some(a) = row.attr("answer") {
                text.push_str(&format!("\n# Answer: {a}"));
            }
            text
        }
        ("ask_user", false) => match (row.attr("question"), row.attr("answer")) {
            (Some(q), Some(a)) => format!("{q} → {a}"),
            (Some(q), None) => q.to_string(),
            _ => String::new(),
        },
        ("search", true) => format!(
            "# search \"{}\"\n{}",
            row.attr("query").unwrap_or_default(),
            row.body
        ),
        ("search", false) => row.attr("query").unwrap_or_default().to_string(),
        ("prompt", true) => row.body.to_string(),
        ("prompt", false) => truncated_summary(row.body, row.path),
        ("error", true) => format!("# error\n{}", row.body),
        ("error", false) => row.body.to_string(),
        (_, true) => row.body.to_string(),
        (_, false) => String::new(),
    }
}

/// Projects one row and measures it.
pub fn project_row(r: &ContextRow, tools: &ToolRegistry, divisor: f64) -> ProjectedRow {
    let attributes = match serde_json::from_str::<Value>(&r.attributes) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let view = ProjectionRow {
        path: &r.path,
        body: &r.body,
        attributes: &attributes,
    };
    let key = projection_key(&r.path);
    let full = project(tools, key, &view, true);
    let cheap = project(tools, key, &view, false);
    let v_tokens = count_tokens(&full, divisor);
    let s_tokens = count_tokens(&cheap, divisor);
    ProjectedRow {
        path: r.path.clone(),
        scheme: r.scheme.clone(),
        category: r.category.clone(),
        visibility: r.visibility.clone(),
        state: r.state,
        outcome: r.outcome.clone(),
        turn: r.turn,
        sort_key: r.sort_key.clone(),
        body: if r.visibility == "visible" {
            full
        } else {
            cheap
        },
        v_tokens,
        s_tokens,
        a_tokens: v_tokens - s_tokens,
        attributes,
    }
}

/// Projects every row and measures it.
pub fn project_rows(rows: &[ContextRow], tools: &ToolRegistry, divisor: f64) -> Vec<ProjectedRow> {
    rows.iter()
        .map(|r| project_row(r, tools, divisor))
        .collect()
}

/// Builds the packet for one turn.
pub fn assemble(input: &PacketInput) -> Packet {
    let divisor = input.token_divisor;
    let rows = ranked(input.rows);
    let system_prompt = sections::system_prompt(input.tools, &input.tool_set, input.persona);
    // Each part is measured once and the packet's figures are sums of the
    // parts' UTF-16 lengths (the same figures as measuring the joined
    // text); the budget table, re-rendered below, is the only part measured
    // more than once.
    let prompt_units = utf16_len(&system_prompt);
    let system_tokens = tokens_of_units(prompt_units, divisor);
    let context = sections::context_block(&rows);
    let system_cost = tokens_of_units(prompt_units + utf16_len(&context), divisor);
    let mut system = String::with_capacity(system_prompt.len() + context.len());
    system.push_str(&system_prompt);
    system.push_str(&context);
    drop(context);
    let mut head = String::new();
    head.push_str(&sections::log_block(&rows));
    head.push_str(&sections::unknowns_block(&rows));
    head.push_str(&sections::instructions_block(&rows));
    let reverted = sections::reverted_count(&rows, input.turn);
    let prompt = sections::prompt_block(&rows, input.tools, &input.tool_set, reverted);
    let fixed_user_units = utf16_len(&head) + utf16_len(&prompt);
    let measure =
        |table_units: usize| system_cost + tokens_of_units(fixed_user_units + table_units, divisor);
    let (user, assembled_tokens) = match input.context_size {
        None => (format!("{head}{prompt}"), measure(0)),
        Some(size) => {
            // The table shows the size of the packet it is part of: render,
            // measure, re-render until the figure stops moving (its digits
            // are the only thing that changes).
            let cap = budget::compute_budget(size, input.budget_ceiling, 0).ceiling;
            let mut shown = sections::row_usage(&rows, system_tokens).max(input.usage_floor);
            let mut table = String::new();
            let mut assembled = measure(0);
            for _ in 0..4 {
                table = sections::budget_block(&rows, cap, system_tokens, shown);
                assembled = measure(utf16_len(&table));
                let measured = assembled.max(input.usage_floor);
                if measured == shown {
                    break;
                }
                shown = measured;
            }
            (format!("{head}{table}{prompt}"), assembled)
        }
    };
    Packet {
        system,
        user,
        rows: snapshot_rows(system_prompt, input.rows),
        assembled_tokens,
        total_tokens: assembled_tokens.max(input.usage_floor),
        system_tokens,
    }
}

/// The `turn_context` rows a packet for `input` would hold, without
/// rendering its messages: the post-dispatch check predicts from rows and
/// sends nothing.
pub fn snapshot(input: &PacketInput) -> Arc<[TurnContextRow]> {
    let system_prompt = sections::system_prompt(input.tools, &input.tool_set, input.persona);
    snapshot_rows(system_prompt, input.rows)
}

/// The system prompt's own row first, then every row's record at its place.
fn snapshot_rows(system_prompt: String, rows: &[Arc<DerivedRow>]) -> Arc<[TurnContextRow]> {
    let mut snapshot: Vec<TurnContextRow> = Vec::with_capacity(rows.len() + 1);
    snapshot.push(TurnContextRow::new(
        0,
        SnapshotRow {
            // Before every entry's key, which starts with its category rank.
            sort_key: "0".into(),
            path: "instructions://system".into(),
            state: EntryState::Resolved,
            outcome: None,
            visibility: "visible".into(),
            body: system_prompt,
            attributes: "{}".into(),
            category: budget::SYSTEM_CATEGORY.into(),
            source_turn: 0,
        },
    ));
    snapshot.extend(
        rows.iter()
            .enumerate()
            .map(|(i, d)| d.saved.at(i as i64 + 1)),
    );
    snapshot.into()
}

/// HTTP-like status of an entry: the first three-digit run in its outcome,
/// else from its state (spec 01 §8.9).
pub fn status_of(state: EntryState, outcome: Option<&str>) -> i64 {
    if let Some(o) = outcome {
        let bytes = o.as_bytes();
        for i in 0..bytes.len().saturating_sub(2) {
            if bytes[i..i + 3].iter().all(u8::is_ascii_digit) {
                if let Ok(n) = o[i..i + 3].parse() {
                    return n;
                }
            }
        }
    }
    state.default_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_outcome_first() {
        assert_eq!(status_of(EntryState::Failed, Some("status:413")), 413);
        assert_eq!(status_of(EntryState::Failed, Some("overflow:1234")), 123);
        assert_eq!(status_of(EntryState::Failed, Some("exit:1")), 500);
        assert_eq!(status_of(EntryState::Resolved, None), 200);
        assert_eq!(status_of(EntryState::Proposed, None), 202);
        assert_eq!(status_of(EntryState::Streaming, None), 102);
        assert_eq!(status_of(EntryState::Cancelled, None), 499);
    }

    fn context_row(path: &str, category: &str, body: &str, ordinal: i64) -> ContextRow {
        ContextRow {
            view_id: ordinal,
            path: path.into(),
            scheme: scheme_of(path).map(str::to_string),
            visibility: "visible".into(),
            state: EntryState::Resolved,
            outcome: None,
            body: body.into(),
            attributes: "{}".into(),
            category: category.into(),
            turn: 1,
            ordinal,
            sort_key: format!("2{ordinal:012}"),
        }
    }

    fn shown_usage(user: &str) -> i64 {
        user.split("<budget tokenUsage=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .expect("budget table")
    }

    #[test]
    fn the_budget_table_shows_the_packet_it_is_in() {
        let rows = vec![
            context_row("known://a", "data", &"a".repeat(3000), 1),
            context_row("prompt://1", "prompt", "go", 2),
        ];
        let tools = ToolRegistry::builtin();
        let rows = derive_rows(&rows, &tools, 2.0);
        let input = PacketInput {
            rows: &rows,
            tools: &tools,
            tool_set: ToolSet::new(crate::tools::Mode::Ask, false),
            persona: None,
            context_size: Some(32768),
            budget_ceiling: 0.9,
            token_divisor: 2.0,
            turn: 1,
            usage_floor: 0,
        };
        let packet = assemble(&input);
        assert_eq!(shown_usage(&packet.user), packet.assembled_tokens);
        assert_eq!(packet.total_tokens, packet.assembled_tokens);
        // The system prompt is recorded for the `system` bucket, first.
        assert_eq!(packet.rows[0].category, budget::SYSTEM_CATEGORY);
        assert_eq!(packet.rows[0].source_turn, 0);
        assert_eq!(
            count_tokens(&packet.rows[0].body, 2.0),
            packet.system_tokens
        );
        // A larger provider count is what the table shows and the check uses.
        let floored = assemble(&PacketInput {
            usage_floor: 20000,
            ..input
        });
        assert_eq!(shown_usage(&floored.user), 20000);
        assert_eq!(floored.total_tokens, 20000);
        assert!(floored.assembled_tokens < 20000);
    }

    #[test]
    fn projection_keys() {
        assert_eq!(projection_key("src/a.rs"), "file");
        assert_eq!(projection_key("log://turn_3/update/x"), "update");
        assert_eq!(projection_key("known://a"), "known");
    }
}
