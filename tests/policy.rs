//! The RECORD-time policy over a real WebSocket: in ask mode, under
//! `noProposals` and under `noInteraction`, a refused command leaves one
//! 400 error entry (the model sees it next turn, and the turn is a strike)
//! and nothing else, while the other commands of the same turn go on.
//!
//! `sh`, `env` and `ask_user` are stand-in tools here that log "ran", so a
//! command that slipped past the policy would leave a log entry.

mod common;

use common::{hello_client, test_vars, FakeProvider, Reply, WsClient};
use rummy::parse::Command;
use rummy::server::{ServerHandle, StartOptions};
use rummy::store::EntryState;
use rummy::tools::{Tool, ToolError, ToolRegistry, TurnCtx};
use rummy::{Config, Server};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

/// Logs that it ran, resolved.
struct Stub(&'static str);

#[async_trait::async_trait]
impl Tool for Stub {
    fn name(&self) -> &'static str {
        self.0
    }
    fn doc(&self) -> Option<&'static str> {
        Some("## stub")
    }
    async fn dispatch(&self, ctx: &TurnCtx, _: &Command, log_path: &str) -> Result<(), ToolError> {
        ctx.write_log(
            log_path,
            format!("{} ran", self.0),
            EntryState::Resolved,
            None,
            None,
            json!({}),
        )
        .await?;
        Ok(())
    }
}

struct Ran {
    _home: tempfile::TempDir,
    root: tempfile::TempDir,
    provider: FakeProvider,
    _server: ServerHandle,
    _client: WsClient,
    last: Value,
}

impl Ran {
    fn status(&self) -> &Value {
        &self.last["params"]["status"]
    }

    fn history(&self) -> Vec<Value> {
        self.last["params"]["history"]
            .as_array()
            .expect("history")
            .clone()
    }

    /// Log entries of turn `t` for one tool (`error`, `set`, ...).
    fn logs(&self, turn: i64, tool: &str) -> Vec<Value> {
        let prefix = format!("log://turn_{turn}/{tool}/");
        self.history()
            .into_iter()
            .filter(|h| h["path"].as_str().is_some_and(|p| p.starts_with(&prefix)))
            .collect()
    }

    fn error_bodies(&self, turn: i64) -> Vec<String> {
        self.logs(turn, "error")
            .iter()
            .map(|e| e["body"].as_str().expect("body").to_string())
            .collect()
    }

    /// Everything the model was sent in request `n` (0-based).
    fn packet(&self, n: usize) -> String {
        let requests = self.provider.requests();
        requests[n]["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.root.path().join(name)).ok()
    }
}

/// Runs one loop in `mode` with `flags` over a project holding `notes.md`,
/// the model playing `replies`, until the run leaves 102.
async fn run(mode: &str, flags: Value, replies: &[&str]) -> Ran {
    let home = tempfile::tempdir().expect("home");
    let root = tempfile::tempdir().expect("root");
    std::fs::write(root.path().join("notes.md"), "old line\n").expect("seed file");
    let provider = FakeProvider::start(
        replies
            .iter()
            .map(|r| Reply::Content(r.to_string()))
            .collect(),
    )
    .await;
    let config = Config::from_vars(test_vars(home.path(), &provider.base_url())).expect("config");
    let tools = ["sh", "env", "ask_user"]
        .into_iter()
        .fold(ToolRegistry::builtin(), |r, n| r.with(Arc::new(Stub(n))));
    let server = Server::start(
        config,
        StartOptions {
            tools: Some(Arc::new(tools)),
            ..StartOptions::default()
        },
    )
    .await
    .expect("server starts");
    let mut c = hello_client(
        server.local_addr.expect("listening"),
        "policy",
        &root.path().to_string_lossy(),
    )
    .await;
    let mut attributes = json!({"model": "fake", "mode": mode});
    if let (Some(a), Some(f)) = (attributes.as_object_mut(), flags.as_object()) {
        a.extend(f.clone());
    }
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "look around", "attributes": attributes}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    Ran {
        _home: home,
        root,
        provider,
        _server: server,
        _client: c,
        last,
    }
}

const DONE: &str = r#"<update status="200">done</update>"#;

#[actix_web::test]
async fn ask_mode_refuses_file_changes_and_sh_while_the_rest_goes_on() {
    let turn1 = r#"<set path="known://n">a note</set>
<set path="notes.md">rewritten</set>
<set path="notes.md">
<<<<<<< SEARCH
old line
=======
new line
>>>>>>> REPLACE
</set>
<set path="notes.md">s/old/new/</set>
<rm path="notes.md"/>
<cp path="known://n">copy.md</cp>
<mv path="known://n" to="moved.md"/>
<mv path="known://n" visibility="summarized"/>
<sh>ls -la</sh>
<env>printenv</env>
<cp path="known://n">known://n2</cp>
<update status="200">looked</update>"#;
    let r = run("ask", json!({}), &[turn1, DONE]).await;
    // The refusals made turn 1 a strike, so its terminal update did not
    // end the run; the clean turn 2 did.
    assert_eq!(r.status(), 200);
    assert_eq!(r.provider.requests().len(), 2);

    let mut errors = r.error_bodies(1);
    errors.sort();
    let mut expected = vec![
        "Rejected file edit to notes.md in ask mode",
        "Rejected file edit to notes.md in ask mode",
        "Rejected file edit to notes.md in ask mode",
        "Rejected file rm of notes.md in ask mode",
        "Rejected cp to file copy.md in ask mode",
        "Rejected mv to file moved.md in ask mode",
        "Rejected <sh> in ask mode",
    ];
    expected.sort();
    assert_eq!(errors, expected);
    for e in r.logs(1, "error") {
        assert_eq!(e["state"], "failed", "{e}");
        assert_eq!(e["outcome"], "status:400", "{e}");
        let attrs: Value = serde_json::from_str(e["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attrs["status"], 400, "{e}");
    }

    // Nothing recorded for a refused command: no log entry at any path of
    // its own; the file and its neighbours on disk are untouched.
    let sets: Vec<Value> = r.logs(1, "set");
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert_eq!(sets[0]["path"], "log://turn_1/set/known%3A//n");
    assert!(r.logs(1, "rm").is_empty());
    assert!(r.logs(1, "sh").is_empty());
    assert_eq!(r.file("notes.md").as_deref(), Some("old line\n"));
    assert_eq!(r.file("copy.md"), None);
    assert_eq!(r.file("moved.md"), None);

    // The allowed commands ran: the note, the copy between scheme paths,
    // mv's visibility form (no destination is not a file), and env.
    let cps = r.logs(1, "cp");
    assert_eq!(cps.len(), 1, "{cps:#?}");
    assert_eq!(cps[0]["state"], "resolved");
    assert_eq!(cps[0]["body"], "known://n known://n2");
    let mvs = r.logs(1, "mv");
    assert_eq!(mvs.len(), 1, "{mvs:#?}");
    assert_eq!(mvs[0]["state"], "resolved");
    assert_eq!(mvs[0]["body"], "known://n set to summarized");
    let envs = r.logs(1, "env");
    assert_eq!(envs.len(), 1, "{envs:#?}");
    assert_eq!(envs[0]["body"], "env ran");

    // The model is told next turn.
    let next = r.packet(1);
    for message in expected {
        assert!(next.contains(message), "{message} missing from\n{next}");
    }
}

#[actix_web::test]
async fn no_proposals_refuses_what_would_wait_for_a_client() {
    let turn1 = r#"<set path="notes.md">rewritten</set>
<sh>make</sh>
<ask_user question="Which file?">a; b</ask_user>
<set path="known://plan">write it here</set>
<update status="102">trying</update>"#;
    let r = run("act", json!({"noProposals": true}), &[turn1, DONE]).await;
    assert_eq!(r.status(), 200);
    let tail = "this loop runs without proposals (noProposals), so nothing can wait for a client's approval.";
    let errors = r.error_bodies(1);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    for head in [
        "Rejected file edit to notes.md: ",
        "Rejected <sh>: ",
        "Rejected <ask_user>: ",
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(head) && e.contains(tail) && e.ends_with("instead.")),
            "{head}: {errors:#?}"
        );
    }
    let sets = r.logs(1, "set");
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert_eq!(sets[0]["path"], "log://turn_1/set/known%3A//plan");
    assert_eq!(sets[0]["state"], "resolved");
    assert!(r.logs(1, "sh").is_empty());
    assert!(r.logs(1, "ask_user").is_empty());
    assert_eq!(r.file("notes.md").as_deref(), Some("old line\n"));
    assert!(r.packet(1).contains("Rejected file edit to notes.md: "));
}

#[actix_web::test]
async fn no_interaction_refuses_ask_user_only() {
    let turn1 = r#"<ask_user question="Which file?">a; b</ask_user>
<env>printenv</env>
<update status="102">asking</update>"#;
    let r = run("act", json!({"noInteraction": true}), &[turn1, DONE]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.error_bodies(1),
        ["Rejected <ask_user>: this loop runs without interaction (noInteraction), so no one would answer. Decide for yourself and state what you assumed in your <update> instead."]
    );
    assert!(r.logs(1, "ask_user").is_empty());
    assert_eq!(r.logs(1, "env").len(), 1);
}

#[actix_web::test]
async fn act_mode_without_flags_lets_everything_through() {
    let turn1 = r#"<sh>ls</sh><env>env</env><ask_user question="Q">a, b</ask_user><update status="200">done</update>"#;
    let r = run("act", json!({}), &[turn1]).await;
    assert_eq!(r.status(), 200);
    assert!(r.error_bodies(1).is_empty(), "{:#?}", r.error_bodies(1));
    for tool in ["sh", "env", "ask_user"] {
        assert_eq!(r.logs(1, tool).len(), 1, "{tool}");
    }
}

/// Upstream keeps a refused command among the turn's recorded commands, so
/// a model repeating only refused commands is told it loops.
#[actix_web::test]
async fn refused_commands_count_for_cycle_detection() {
    let r = run(
        "ask",
        json!({}),
        &["<sh>ls</sh>", "<sh>ls</sh>", "<sh>ls</sh>"],
    )
    .await;
    assert_eq!(r.status(), 499);
    for turn in 1..=3 {
        assert!(
            r.error_bodies(turn)
                .contains(&"Rejected <sh> in ask mode".to_string()),
            "turn {turn}"
        );
    }
    assert!(
        r.error_bodies(3).contains(&"Loop detected".to_string()),
        "{:#?}",
        r.error_bodies(3)
    );
}
