//! Unit tests of the mapping rules, one per rule.
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
fn a_replayed_edit_gets_its_text_before_from_its_patch() {
    let mut t = Tracker::replaying().rooted(PathBuf::from("/p"));
    let patch = crate::hedberg::unified_diff("src/a.rs", "one\ntwo\n", "one\nTWO\n");
    let edit = RunLogItem {
        attributes: serde_json::json!({ "path": "src/a.rs", "patch": patch }).to_string(),
        ..item(
            "log://turn_1/set/src/a.rs",
            EntryState::Resolved,
            "one\nTWO\n",
        )
    };
    let ups = t.updates(&[edit]);
    let diff = ups.iter().find_map(|u| match u {
        SessionUpdate::ToolCall(c) => c.content.iter().find_map(|x| match x {
            ToolCallContent::Diff(d) => Some(d.clone()),
            _ => None,
        }),
        _ => None,
    });
    let d = diff.expect("the replayed edit is a diff");
    assert_eq!(d.old_text.as_deref(), Some("one\ntwo\n"));
    assert_eq!(d.new_text, "one\nTWO\n");
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

#[test]
fn attachments_inlined_follow_the_prompt_under_their_paths() {
    let attached = vec![Attachment {
        path: "a.txt".into(),
        body: "A".into(),
    }];
    assert_eq!(
        inline_attachments("look (attached: a.txt)".into(), attached),
        "look (attached: a.txt)\n\na.txt:\n```\nA\n```"
    );
    assert_eq!(inline_attachments("plain".into(), Vec::new()), "plain");
}
