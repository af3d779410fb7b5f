//! Hosting rummy in-process: a program starts the engine without any
//! listener, drives a run through the run service and hears its
//! notifications through the hub; and a panicking tool (test-only) ends
//! only its own run.

mod common;

use actix::prelude::*;
use common::{hello_client, test_vars, FakeProvider, Reply};
use rummy::hub::Push;
use rummy::parse::Command;
use rummy::run::service::{RunSettings, StartRun};
use rummy::run::LoopFlags;
use rummy::server::StartOptions;
use rummy::store::{GetRun, UpsertProject};
use rummy::tools::{Mode, Tool, ToolError, ToolRegistry, TurnCtx};
use rummy::{Config, Server};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const LONG: Duration = Duration::from_secs(20);

/// An embedder's notification sink: every pushed frame, parsed.
struct Collector(mpsc::UnboundedSender<Value>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Push> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Push, _: &mut Context<Self>) {
        if let Ok(frame) = serde_json::from_str(&msg.0) {
            let _ = self.0.send(frame);
        }
    }
}

async fn next_state(rx: &mut mpsc::UnboundedReceiver<Value>, alias: &str) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no terminal run/state for {alias}"))
            .expect("hub still sending");
        if frame["method"] == "run/state"
            && frame["params"]["run"] == alias
            && frame["params"]["status"] != 102
        {
            return frame;
        }
    }
}

#[actix_web::test]
async fn a_program_runs_the_engine_without_a_listener() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="200">embedded answer</update>"#.into(),
    )])
    .await;
    let home = tempfile::tempdir().expect("home");
    let config = Config::from_vars(test_vars(home.path(), &provider.base_url())).expect("config");
    let server = Server::start(
        config,
        StartOptions {
            listen: false,
            ..StartOptions::default()
        },
    )
    .await
    .expect("starts");
    assert_eq!(server.local_addr, None, "no port was opened");

    let root = tempfile::tempdir().expect("root");
    let project_id = server
        .store
        .run(UpsertProject {
            name: "embedded".into(),
            project_root: root.path().to_string_lossy().into_owned(),
            config_path: None,
        })
        .await
        .expect("project");
    let (tx, mut rx) = mpsc::unbounded_channel();
    server.subscribe(project_id, Collector(tx).start().recipient());

    let run = server
        .runs
        .start_run(StartRun {
            project_id,
            alias: Some("embedded_run".into()),
            model: "fake".into(),
            mode: Mode::Ask,
            prompt: "answer me".into(),
            settings: RunSettings::default(),
            flags: LoopFlags {
                no_repo: Some(true),
                ..LoopFlags::default()
            },
        })
        .await
        .expect("run starts");
    assert_eq!(run.alias, "embedded_run");
    let state = next_state(&mut rx, "embedded_run").await;
    assert_eq!(state["params"]["status"], 200);
    assert_eq!(state["params"]["summary"], "embedded answer");
    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].to_string().contains("answer me"));

    let cancelled = server
        .runs
        .cancel(project_id, "embedded_run", "not needed")
        .await
        .expect("cancel answers");
    assert!(!cancelled.was_running, "a finished run is left as it is");
    let refused = server
        .runs
        .start_run(StartRun {
            project_id,
            alias: None,
            model: "nope".into(),
            mode: Mode::Ask,
            prompt: "x".into(),
            settings: RunSettings::default(),
            flags: LoopFlags::default(),
        })
        .await
        .expect_err("unknown model");
    assert!(refused.to_string().contains("Unknown model alias 'nope'"));
    server.stop().await;
}

/// A tool whose handler panics (test-only).
struct Panicking;

#[async_trait::async_trait]
impl Tool for Panicking {
    fn name(&self) -> &'static str {
        "search"
    }
    fn doc(&self) -> Option<&'static str> {
        Some("search: a test tool that panics")
    }
    async fn dispatch(&self, _: &TurnCtx, _: &Command, _: &str) -> Result<(), ToolError> {
        panic!("the test tool panicked on purpose");
    }
}

#[actix_web::test]
async fn a_panicking_tool_ends_only_its_own_run() {
    let provider = FakeProvider::start(vec![
        // The bystander's call is slow, so it is in flight during the panic.
        Reply::Delayed(
            Duration::from_millis(800),
            r#"<update status="200">bystander done</update>"#.into(),
        ),
        Reply::Content(r#"<search>boom</search><update status="200">never</update>"#.into()),
    ])
    .await;
    let home = tempfile::tempdir().expect("home");
    let config = Config::from_vars(test_vars(home.path(), &provider.base_url())).expect("config");
    let tools = ToolRegistry::builtin().with(Arc::new(Panicking));
    let server = Server::start(
        config,
        StartOptions {
            tools: Some(Arc::new(tools)),
            ..StartOptions::default()
        },
    )
    .await
    .expect("starts");
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        server.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let start = |alias: &str| {
        json!({"path": format!("run://{alias}"), "body": "go",
               "attributes": {"model": "fake", "mode": "act", "noRepo": true}})
    };
    c.call("set", start("bystander")).await.expect("bystander");
    let deadline = tokio::time::Instant::now() + LONG;
    while provider.requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bystander never called"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.call("set", start("victim")).await.expect("victim");

    let victim = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == "victim" && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(victim["params"]["status"], 500);
    let history = victim["params"]["history"].to_string();
    assert!(
        history.contains("the test tool panicked on purpose"),
        "the error entry names the panic: {history}"
    );
    let bystander = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == "bystander" && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(bystander["params"]["status"], 200);

    // The server goes on: new calls are answered and the victim can run again.
    assert_eq!(c.call("ping", json!({})).await.expect("ping"), json!({}));
    let stored = server
        .store
        .run(GetRun {
            alias: "victim".into(),
            project_id: None,
        })
        .await
        .expect("get")
        .expect("run");
    assert_eq!(stored.status, 500);
    c.call(
        "set",
        json!({"path": "run://victim", "body": "again", "attributes": {"mode": "ask", "noRepo": true}}),
    )
    .await
    .expect("continue");
    let again = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == "victim" && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(again["params"]["status"], 200);
    server.stop().await;
}
