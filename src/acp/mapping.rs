//! Pure translations between rummy's run notifications and ACP messages.
//! Nothing here talks to the engine or the connection, so every rule has
//! its own unit test.

use crate::protocol::notifications::{RunLogItem, RunTelemetry, UnknownItem};
use crate::protocol::runs::TurnText;
use crate::protocol::EntryState;
use crate::run::editor::Attachment;
use crate::tools::Mode;
use agent_client_protocol::v1::schema::EmbeddedResourceResource;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, Cost, Diff, PermissionOption, PermissionOptionKind, Plan,
    PlanEntry, PlanEntryPriority, PlanEntryStatus, RequestPermissionOutcome, SessionMode,
    SessionModeState, SessionUpdate, StopReason, TextContent, ToolCall, ToolCallContent,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields, ToolKind, UsageUpdate,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Permission option ids (stable: clients may remember them).
pub const ALLOW_ONCE: &str = "allow_once";
pub const ALLOW_ALWAYS: &str = "allow_always";
pub const REJECT_ONCE: &str = "reject_once";
/// Prefix of an `ask_user` answer's option id; the index follows.
pub const ANSWER_PREFIX: &str = "answer_";

/// The tool of a log or proposal path: `log://turn_3/set/a.txt` -> `set`,
/// `set://a.txt` -> `set`.
pub fn path_tool(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("log://") {
        return rest.split('/').nth(1).unwrap_or("");
    }
    path.split_once("://").map_or("", |(scheme, _)| scheme)
}

/// What a proposal or log entry acts on: `log://turn_3/set/a.txt` -> `a.txt`.
pub fn path_target(path: &str) -> String {
    let rest = match path.strip_prefix("log://") {
        Some(rest) => rest.splitn(3, '/').nth(2).unwrap_or(""),
        None => path.split_once("://").map_or(path, |(_, r)| r),
    };
    percent_decode(rest)
}

/// Minimal %XX decoding for titles (paths are stored percent-encoded).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ACP tool kind of a rummy command.
pub fn tool_kind(tool: &str) -> ToolKind {
    match tool {
        "get" => ToolKind::Read,
        "set" | "cp" => ToolKind::Edit,
        "rm" => ToolKind::Delete,
        "mv" => ToolKind::Move,
        "sh" | "env" => ToolKind::Execute,
        "think" => ToolKind::Think,
        "search" => ToolKind::Search,
        _ => ToolKind::Other,
    }
}

/// The ACP status of an entry's state.
pub fn tool_status(state: EntryState) -> ToolCallStatus {
    match state {
        EntryState::Proposed => ToolCallStatus::Pending,
        EntryState::Streaming => ToolCallStatus::InProgress,
        EntryState::Resolved => ToolCallStatus::Completed,
        EntryState::Failed | EntryState::Cancelled => ToolCallStatus::Failed,
    }
}

/// How a prompt turn ends: a stop reason, or a JSON-RPC error with the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptEnd {
    Stop(StopReason),
    Error(String),
}

/// The prompt response for a run's final status. `cancelled`: the client
/// sent `session/cancel` during this turn; `turn`/`max_turns` tell the turn
/// cap from an abandonment by strikes (both end 499).
pub fn prompt_end(
    status: i64,
    cancelled: bool,
    turn: i64,
    max_turns: u32,
    last_error: Option<&str>,
) -> PromptEnd {
    if cancelled {
        return PromptEnd::Stop(StopReason::Cancelled);
    }
    match status {
        200 | 204 | 422 => PromptEnd::Stop(StopReason::EndTurn),
        499 if turn >= i64::from(max_turns) => PromptEnd::Stop(StopReason::MaxTurnRequests),
        499 => PromptEnd::Error(format!(
            "run abandoned (499){}",
            last_error.map(|e| format!(": {e}")).unwrap_or_default()
        )),
        other => PromptEnd::Error(format!(
            "run failed ({other}){}",
            last_error.map(|e| format!(": {e}")).unwrap_or_default()
        )),
    }
}

/// The session modes: rummy's ask and act.
pub fn modes(current: Mode) -> SessionModeState {
    SessionModeState::new(
        current.as_str().to_string(),
        vec![
            SessionMode::new("ask", "Ask").description("Answers only; file changes are refused."),
            SessionMode::new("act", "Act").description("May change files, through proposals."),
        ],
    )
}

/// A `session/prompt`'s content: the prompt text (text blocks in order,
/// resource links appended with their URIs, a note naming each attached
/// entry) and the embedded text resources as entries.
pub fn prompt_parts(blocks: &[ContentBlock], cwd: &Path) -> (String, Vec<Attachment>) {
    let mut parts = Vec::new();
    let mut attached = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => parts.push(t.text.clone()),
            ContentBlock::ResourceLink(link) => {
                parts.push(format!("[{}]({})", link.name, link.uri))
            }
            ContentBlock::Resource(res) => {
                if let EmbeddedResourceResource::TextResourceContents(t) = &res.resource {
                    let path = resource_path(&t.uri, cwd);
                    parts.push(format!("(attached: {path})"));
                    attached.push(Attachment {
                        path,
                        body: t.text.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    (parts.join("\n\n"), attached)
}

/// The prompt with its attachments' text after it, for an engine that
/// cannot take them as entries (a remote one): each under its path.
pub fn inline_attachments(text: String, attached: Vec<Attachment>) -> String {
    let mut out = text;
    for a in attached {
        out.push_str(&format!("\n\n{}:\n```\n{}\n```", a.path, a.body));
    }
    out
}

/// Where an embedded resource goes: a `file://` URI or a path under `cwd`
/// is that project file (relative path); anything else stays at its URI.
pub fn resource_path(uri: &str, cwd: &Path) -> String {
    let local = match uri.strip_prefix("file://") {
        Some(rest) => Some(percent_decode(rest)),
        None if !uri.contains("://") => Some(uri.to_string()),
        None => None,
    };
    local
        .and_then(|p| crate::files::confine(cwd, &p).ok())
        .unwrap_or_else(|| uri.to_string())
}

/// The options of a proposal's permission request.
pub fn permission_options() -> Vec<PermissionOption> {
    vec![
        PermissionOption::new(ALLOW_ONCE, "Allow once", PermissionOptionKind::AllowOnce),
        PermissionOption::new(
            ALLOW_ALWAYS,
            "Allow always (this session)",
            PermissionOptionKind::AllowAlways,
        ),
        PermissionOption::new(REJECT_ONCE, "Reject", PermissionOptionKind::RejectOnce),
    ]
}

/// The options of an `ask_user` question: one per answer.
pub fn answer_options(answers: &[String]) -> Vec<PermissionOption> {
    answers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            PermissionOption::new(
                format!("{ANSWER_PREFIX}{i}"),
                a.clone(),
                PermissionOptionKind::AllowOnce,
            )
        })
        .collect()
}

/// What the client chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Once,
    Always,
    Reject,
    /// An `ask_user` answer.
    Answer(String),
}

/// Reads the client's choice; anything unknown or cancelled rejects.
pub fn choice(outcome: &RequestPermissionOutcome, answers: &[String]) -> Choice {
    let RequestPermissionOutcome::Selected(selected) = outcome else {
        return Choice::Reject;
    };
    let id: &str = &selected.option_id.0;
    match id {
        ALLOW_ONCE => Choice::Once,
        ALLOW_ALWAYS => Choice::Always,
        _ => id
            .strip_prefix(ANSWER_PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| answers.get(n))
            .map_or(Choice::Reject, |a| Choice::Answer(a.clone())),
    }
}

/// The run's unknowns as a plan (open questions are pending entries).
pub fn plan(unknowns: &[UnknownItem]) -> Plan {
    Plan::new(
        unknowns
            .iter()
            .map(|u| {
                PlanEntry::new(
                    u.body.clone(),
                    PlanEntryPriority::Medium,
                    PlanEntryStatus::Pending,
                )
            })
            .collect(),
    )
}

/// Context use and cost; none while the context window is unknown.
pub fn usage(t: &RunTelemetry) -> Option<UsageUpdate> {
    let size = u64::try_from(t.context_size?).ok()?;
    let used = u64::try_from(t.context_tokens.max(0)).unwrap_or(0);
    Some(UsageUpdate::new(used, size).cost(Cost::new(t.cost, "USD")))
}

/// A target naming a project file (not an entry of another scheme).
fn scheme_free(target: &str) -> bool {
    !target.contains("://")
}

fn text_chunk(text: &str) -> ContentChunk {
    ContentChunk::new(ContentBlock::Text(TextContent::new(text)))
}

/// The title of a tool call: `set a.txt`.
pub fn tool_title(path: &str) -> String {
    let target = path_target(path);
    let tool = path_tool(path);
    if target.is_empty() {
        tool.to_string()
    } else {
        format!("{tool} {target}")
    }
}

/// A tool call for a command rummy recorded.
pub fn tool_call(item: &RunLogItem) -> ToolCall {
    let tool = path_tool(&item.path);
    let mut call = ToolCall::new(item.path.clone(), tool_title(&item.path))
        .kind(tool_kind(tool))
        .status(tool_status(item.state));
    if let Some(content) = tool_content(tool, &item.body) {
        call = call.content(vec![content]);
    }
    call
}

/// The output shown with a call: text for sh/env and reads.
fn tool_content(tool: &str, body: &str) -> Option<ToolCallContent> {
    if body.is_empty() || !matches!(tool, "sh" | "env" | "get" | "search") {
        return None;
    }
    Some(ToolCallContent::from(body.to_string()))
}

/// A file edit as ACP shows it: the file's absolute path, its text before
/// (none: a new file) and after.
pub fn diff(file: PathBuf, old: Option<String>, new: &str) -> ToolCallContent {
    ToolCallContent::Diff(Diff::new(file, new.to_string()).old_text(old))
}

/// A command's output as a call's text content: stdout, then stderr under
/// a marker; none when both are empty.
pub fn command_output(stdout: &str, stderr: &str) -> Option<ToolCallContent> {
    let text = match (stdout.is_empty(), stderr.is_empty()) {
        (true, true) => return None,
        (false, true) => stdout.to_string(),
        (true, false) => format!("stderr:\n{stderr}"),
        (false, false) => format!("{stdout}\nstderr:\n{stderr}"),
    };
    Some(ToolCallContent::from(text))
}

/// A file edit's text before it, from the log entry's `patch` (the edit
/// from the old text to the body); `None` for a new file or when the patch
/// does not lead back from the body.
fn text_before(item: &RunLogItem) -> Option<String> {
    let attributes: serde_json::Value = serde_json::from_str(&item.attributes).ok()?;
    let patch = attributes.get("patch")?.as_str()?;
    crate::hedberg::text_before_patch(&item.body, patch).filter(|old| !old.is_empty())
}

/// Turns the run's full history, as each `run/state` carries it, into the
/// updates a client has not seen yet.
#[derive(Debug, Default)]
pub struct Tracker {
    seen: HashMap<String, EntryState>,
    /// Replaying a loaded session: prompts go out as user messages too.
    replay: bool,
    /// The project root: edits' diffs name absolute paths.
    root: Option<PathBuf>,
    /// A proposed edit's file text before it (`None` inside: a new file),
    /// by call id, for the diff of its later updates.
    old: HashMap<String, Option<String>>,
}

impl Tracker {
    pub fn replaying() -> Tracker {
        Tracker {
            replay: true,
            ..Tracker::default()
        }
    }

    /// Diffs of edits name files under `root`.
    pub fn rooted(mut self, root: PathBuf) -> Tracker {
        self.root = Some(root);
        self
    }

    /// Remembers an edit's text before it, for its diff.
    pub fn remember_old(&mut self, call_id: &str, old: Option<String>) {
        self.old.insert(call_id.to_string(), old);
    }

    /// The content of a call: the diff of a file edit (`set`; the entry's
    /// body is the new text), else [`tool_content`].
    fn content(&self, tool: &str, item: &RunLogItem) -> Option<ToolCallContent> {
        if tool == "set" && scheme_free(&path_target(&item.path)) {
            let target = path_target(&item.path);
            let file = match &self.root {
                Some(r) => r.join(&target),
                None => PathBuf::from(&target),
            };
            // A live edit's old text was remembered when it was proposed;
            // a replayed one's comes back from its `patch` attribute.
            let old = match self.old.get(&item.path) {
                Some(old) => old.clone(),
                None => text_before(item),
            };
            return Some(diff(file, old, &item.body));
        }
        tool_content(tool, &item.body)
    }

    /// Marks a proposal announced (as a pending tool call) already.
    pub fn announce(&mut self, path: &str) {
        self.seen.insert(path.to_string(), EntryState::Proposed);
    }

    /// The text of the newest failed entry (an error entry), for errors.
    pub fn last_error(history: &[RunLogItem]) -> Option<String> {
        history
            .iter()
            .rev()
            .find(|i| path_tool(&i.path) == "error" || i.tool.as_deref() == Some("error"))
            .map(|i| i.body.clone())
    }

    /// The model's reasoning (`reasoning://N`, not part of `run/state`'s
    /// history) as thought chunks, each once.
    pub fn thoughts(&mut self, reasoning: &[TurnText]) -> Vec<SessionUpdate> {
        reasoning
            .iter()
            .filter(|r| !r.body.is_empty())
            .filter(|r| {
                self.seen
                    .insert(r.path.clone(), EntryState::Resolved)
                    .is_none()
            })
            .map(|r| SessionUpdate::AgentThoughtChunk(text_chunk(&r.body)))
            .collect()
    }

    pub fn updates(&mut self, history: &[RunLogItem]) -> Vec<SessionUpdate> {
        let mut out = Vec::new();
        for item in history {
            let before = self.seen.insert(item.path.clone(), item.state);
            if before == Some(item.state) {
                continue;
            }
            let tool = path_tool(&item.path);
            let prompt = item.tool.as_deref() == Some("prompt") || tool == "prompt";
            match tool {
                _ if prompt => {
                    if self.replay && before.is_none() {
                        out.push(SessionUpdate::UserMessageChunk(text_chunk(&item.body)));
                    }
                }
                "update" | "summarize" => {
                    if before.is_none() && !item.body.is_empty() {
                        out.push(SessionUpdate::AgentMessageChunk(text_chunk(&item.body)));
                    }
                }
                "reasoning" => {
                    if before.is_none() && !item.body.is_empty() {
                        out.push(SessionUpdate::AgentThoughtChunk(text_chunk(&item.body)));
                    }
                }
                "unknown" | "error" | "" => {}
                _ if item.tool.as_deref() == Some("unknown") => {}
                _ => match before {
                    None => {
                        let mut call = tool_call(item);
                        if let Some(c) = self.content(tool, item) {
                            call = call.content(vec![c]);
                        }
                        out.push(SessionUpdate::ToolCall(call));
                    }
                    Some(_) => {
                        let mut fields =
                            ToolCallUpdateFields::new().status(tool_status(item.state));
                        if let Some(c) = self.content(tool, item) {
                            fields = fields.content(vec![c]);
                        }
                        out.push(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                            item.path.clone(),
                            fields,
                        )));
                    }
                },
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
