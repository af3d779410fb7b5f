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
            let old = self.old.get(&item.path).cloned().flatten();
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
mod tests {
    use super::*;
    use agent_client_protocol::v1::schema::SelectedPermissionOutcome;

    fn item(path: &str, state: EntryState, body: &str) -> RunLogItem {
        RunLogItem {
            tool: Some("log".into()),
            state,
            outcome: None,
            path: path.into(),
            body: body.into(),
            turn: 1,
            attributes: "{}".into(),
        }
    }

    #[test]
    fn commands_map_to_tool_kinds() {
        assert_eq!(tool_kind("get"), ToolKind::Read);
        assert_eq!(tool_kind("set"), ToolKind::Edit);
        assert_eq!(tool_kind("cp"), ToolKind::Edit);
        assert_eq!(tool_kind("rm"), ToolKind::Delete);
        assert_eq!(tool_kind("mv"), ToolKind::Move);
        assert_eq!(tool_kind("sh"), ToolKind::Execute);
        assert_eq!(tool_kind("env"), ToolKind::Execute);
        assert_eq!(tool_kind("think"), ToolKind::Think);
        assert_eq!(tool_kind("search"), ToolKind::Search);
        assert_eq!(tool_kind("ask_user"), ToolKind::Other);
    }

    #[test]
    fn entry_states_map_to_tool_statuses() {
        assert_eq!(tool_status(EntryState::Proposed), ToolCallStatus::Pending);
        assert_eq!(
            tool_status(EntryState::Streaming),
            ToolCallStatus::InProgress
        );
        assert_eq!(tool_status(EntryState::Resolved), ToolCallStatus::Completed);
        assert_eq!(tool_status(EntryState::Failed), ToolCallStatus::Failed);
        assert_eq!(tool_status(EntryState::Cancelled), ToolCallStatus::Failed);
    }

    #[test]
    fn finished_statuses_end_the_turn() {
        for s in [200, 204, 422] {
            assert_eq!(
                prompt_end(s, false, 1, 99, None),
                PromptEnd::Stop(StopReason::EndTurn)
            );
        }
    }

    #[test]
    fn the_turn_cap_is_max_turn_requests() {
        assert_eq!(
            prompt_end(499, false, 5, 5, None),
            PromptEnd::Stop(StopReason::MaxTurnRequests)
        );
    }

    #[test]
    fn a_cancel_is_cancelled_whatever_the_status() {
        assert_eq!(
            prompt_end(499, true, 1, 99, None),
            PromptEnd::Stop(StopReason::Cancelled)
        );
        assert_eq!(
            prompt_end(200, true, 1, 99, None),
            PromptEnd::Stop(StopReason::Cancelled)
        );
    }

    #[test]
    fn strikes_and_failures_are_errors_with_the_reason() {
        let PromptEnd::Error(e) = prompt_end(499, false, 3, 99, Some("bad tag")) else {
            panic!("strikes are an error");
        };
        assert!(e.contains("499") && e.contains("bad tag"), "{e}");
        assert!(matches!(
            prompt_end(500, false, 1, 99, None),
            PromptEnd::Error(_)
        ));
    }

    #[test]
    fn paths_give_tool_and_target() {
        assert_eq!(path_tool("log://turn_3/set/a.txt"), "set");
        assert_eq!(path_tool("set://a.txt"), "set");
        assert_eq!(
            path_target("log://turn_1/ask_user/Which%20colour%3F"),
            "Which colour?"
        );
        assert_eq!(tool_title("log://turn_2/get/src/x.rs"), "get src/x.rs");
    }

    #[test]
    fn text_and_links_become_the_prompt() {
        let blocks = vec![
            ContentBlock::Text(TextContent::new("fix it")),
            ContentBlock::ResourceLink(agent_client_protocol::v1::schema::ResourceLink::new(
                "a.rs",
                "file:///p/a.rs",
            )),
        ];
        let (text, attached) = prompt_parts(&blocks, Path::new("/p"));
        assert_eq!(text, "fix it\n\n[a.rs](file:///p/a.rs)");
        assert!(attached.is_empty(), "links stay in the prompt");
    }

    fn resource(uri: &str, text: &str) -> ContentBlock {
        use agent_client_protocol::v1::schema::{EmbeddedResource, TextResourceContents};
        ContentBlock::Resource(EmbeddedResource::new(
            EmbeddedResourceResource::TextResourceContents(TextResourceContents::new(text, uri)),
        ))
    }

    #[test]
    fn embedded_resources_become_entries() {
        let blocks = vec![
            ContentBlock::Text(TextContent::new("look")),
            resource("file:///p/src/a%20b.rs", "fn main() {}"),
            resource("https://example.com/doc", "the doc"),
            resource("file:///elsewhere/x.txt", "outside"),
        ];
        let (text, attached) = prompt_parts(&blocks, Path::new("/p"));
        let paths: Vec<&str> = attached.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "src/a b.rs",
                "https://example.com/doc",
                "file:///elsewhere/x.txt"
            ]
        );
        assert_eq!(attached[0].body, "fn main() {}");
        assert!(text.starts_with("look"), "{text}");
        assert!(text.contains("(attached: src/a b.rs)"), "{text}");
        assert!(
            !text.contains("fn main"),
            "the body is the entry's, not the prompt's"
        );
    }

    #[test]
    fn resource_paths_under_cwd_are_relative() {
        let cwd = Path::new("/p");
        assert_eq!(resource_path("/p/x.rs", cwd), "x.rs");
        assert_eq!(resource_path("src/y.rs", cwd), "src/y.rs");
        assert_eq!(resource_path("zed://buffer/3", cwd), "zed://buffer/3");
    }

    fn selected(id: &str) -> RequestPermissionOutcome {
        RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id.to_string()))
    }

    #[test]
    fn permission_choices_are_read_by_option_id() {
        let ids: Vec<String> = permission_options()
            .iter()
            .map(|o| o.option_id.0.to_string())
            .collect();
        assert_eq!(ids, [ALLOW_ONCE, ALLOW_ALWAYS, REJECT_ONCE]);
        assert_eq!(choice(&selected(ALLOW_ONCE), &[]), Choice::Once);
        assert_eq!(choice(&selected(ALLOW_ALWAYS), &[]), Choice::Always);
        assert_eq!(choice(&selected(REJECT_ONCE), &[]), Choice::Reject);
        assert_eq!(
            choice(&RequestPermissionOutcome::Cancelled, &[]),
            Choice::Reject
        );
    }

    #[test]
    fn ask_user_options_are_the_answers() {
        let answers = vec!["red".to_string(), "dark blue".to_string()];
        let opts = answer_options(&answers);
        assert_eq!(opts[1].name, "dark blue");
        let id = opts[1].option_id.0.to_string();
        assert_eq!(
            choice(&selected(&id), &answers),
            Choice::Answer("dark blue".into())
        );
    }

    #[test]
    fn unknowns_are_a_pending_plan() {
        let p = plan(&[UnknownItem {
            path: "unknown://1".into(),
            body: "where is main?".into(),
        }]);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].status, PlanEntryStatus::Pending);
    }

    #[test]
    fn updates_are_message_chunks_and_commands_tool_calls_once() {
        let mut t = Tracker::default();
        let h = vec![
            item("log://turn_1/get/a.txt", EntryState::Resolved, "A"),
            item("log://turn_1/update/1", EntryState::Resolved, "done"),
        ];
        let ups = t.updates(&h);
        assert_eq!(ups.len(), 2);
        assert!(matches!(&ups[0], SessionUpdate::ToolCall(c) if c.kind == ToolKind::Read));
        assert!(matches!(&ups[1], SessionUpdate::AgentMessageChunk(_)));
        assert!(t.updates(&h).is_empty(), "nothing twice");
    }

    #[test]
    fn a_state_change_is_a_tool_call_update() {
        let mut t = Tracker::default();
        t.updates(&[item("log://turn_1/sh/ls", EntryState::Streaming, "")]);
        let ups = t.updates(&[item("log://turn_1/sh/ls", EntryState::Resolved, "a\nb")]);
        let [SessionUpdate::ToolCallUpdate(u)] = ups.as_slice() else {
            panic!("one update: {ups:?}");
        };
        assert_eq!(u.fields.status, Some(ToolCallStatus::Completed));
        assert!(u.fields.content.is_some(), "sh output goes with it");
    }

    #[test]
    fn replay_sends_prompts_as_user_messages() {
        let mut p = item("prompt://1", EntryState::Resolved, "hello");
        p.tool = Some("prompt".into());
        assert!(Tracker::default()
            .updates(std::slice::from_ref(&p))
            .is_empty());
        let ups = Tracker::replaying().updates(&[p]);
        assert!(matches!(&ups[0], SessionUpdate::UserMessageChunk(_)));
    }

    #[test]
    fn reasoning_is_thought_chunks_once() {
        let mut t = Tracker::default();
        let r = vec![TurnText {
            path: "reasoning://1".into(),
            body: "hmm".into(),
            turn: 1,
        }];
        assert!(matches!(
            &t.thoughts(&r)[..],
            [SessionUpdate::AgentThoughtChunk(_)]
        ));
        assert!(t.thoughts(&r).is_empty());
    }

    #[test]
    fn usage_needs_a_known_window() {
        let mut t = RunTelemetry {
            model_alias: "m".into(),
            model: "m".into(),
            temperature: None,
            context_size: None,
            context_tokens: 100,
            ceiling: None,
            token_usage: 100,
            tokens_free: None,
            prompt_tokens: 0,
            cached_tokens: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
            total_tokens: 0,
            cost: 0.5,
            context_distribution: vec![],
        };
        assert!(usage(&t).is_none());
        t.context_size = Some(1000);
        let u = usage(&t).expect("usage");
        assert_eq!((u.used, u.size), (100, 1000));
    }

    #[test]
    fn an_edit_update_is_a_diff_with_the_text_before() {
        let mut t = Tracker::default().rooted(PathBuf::from("/p"));
        t.announce("log://turn_1/set/src/a.rs");
        t.remember_old("log://turn_1/set/src/a.rs", Some("old".into()));
        let ups = t.updates(&[item(
            "log://turn_1/set/src/a.rs",
            EntryState::Resolved,
            "new",
        )]);
        let [SessionUpdate::ToolCallUpdate(u)] = ups.as_slice() else {
            panic!("one update: {ups:?}");
        };
        let Some([ToolCallContent::Diff(d)]) = u.fields.content.as_deref() else {
            panic!("a diff: {u:?}");
        };
        assert_eq!(d.path, PathBuf::from("/p/src/a.rs"));
        assert_eq!(d.old_text.as_deref(), Some("old"));
        assert_eq!(d.new_text, "new");
    }

    #[test]
    fn an_edit_of_a_new_file_has_no_text_before() {
        let mut t = Tracker::default().rooted(PathBuf::from("/p"));
        let ups = t.updates(&[item("log://turn_1/set/b.txt", EntryState::Resolved, "B")]);
        let [SessionUpdate::ToolCall(c)] = ups.as_slice() else {
            panic!("one call: {ups:?}");
        };
        assert!(matches!(&c.content[..], [ToolCallContent::Diff(d)] if d.old_text.is_none()));
    }

    #[test]
    fn entry_edits_are_not_file_diffs() {
        let mut t = Tracker::default();
        let ups = t.updates(&[item(
            "log://turn_1/set/known://a",
            EntryState::Resolved,
            "fact",
        )]);
        let [SessionUpdate::ToolCall(c)] = ups.as_slice() else {
            panic!("one call: {ups:?}");
        };
        assert!(c.content.is_empty(), "{c:?}");
    }

    #[test]
    fn command_output_is_stdout_then_stderr() {
        assert!(command_output("", "").is_none());
        let text = |c: ToolCallContent| match c {
            ToolCallContent::Content(c) => match c.content {
                ContentBlock::Text(t) => t.text,
                _ => String::new(),
            },
            _ => String::new(),
        };
        assert_eq!(text(command_output("a\n", "").expect("out")), "a\n");
        assert_eq!(
            text(command_output("a", "oops").expect("out")),
            "a\nstderr:\noops"
        );
    }

    #[test]
    fn modes_are_ask_and_act() {
        let m = modes(Mode::Act);
        assert_eq!(&*m.current_mode_id.0, "act");
        assert_eq!(m.available_modes.len(), 2);
    }
}
