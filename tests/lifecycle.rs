//! Run lifecycle over a real WebSocket and through the run service:
//! finishing a loop against a concurrent cancel, cancelling a finished run,
//! continuing with a temperature, and forgetting idle run actors.

mod common;

use common::{hello_client, start_server, Reply, WsClient};
use rummy::store::{
    AbortRun, ClaimNextLoop, CreateRun, EnqueueLoop, FinishLoop, GetRun, RunStatus, UpsertProject,
};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn client(t: &common::TestServer, root: &std::path::Path) -> WsClient {
    hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &root.to_string_lossy(),
    )
    .await
}

async fn run_to_end(c: &mut WsClient, attributes: Value, prompt: &str) -> (String, Value) {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": prompt, "attributes": attributes}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    (alias, last)
}

fn ask(extra: Value) -> Value {
    let mut base = json!({"model": "fake", "mode": "ask", "noRepo": true});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

async fn run_entry(c: &mut WsClient, alias: &str) -> Value {
    let entries = c
        .call("getEntries", json!({"run": alias, "pattern": "run://*"}))
        .await
        .expect("entries");
    entries
        .as_array()
        .and_then(|a| a.iter().find(|e| e["path"] == format!("run://{alias}")))
        .cloned()
        .unwrap_or_else(|| panic!("no run:// entry in {entries}"))
}

#[actix_web::test]
async fn cancelling_a_finished_run_answers_ok_and_changes_nothing() {
    let t = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = client(&t, root.path()).await;
    let (alias, last) = run_to_end(&mut c, ask(json!({})), "hi").await;
    assert_eq!(last["params"]["status"], 200);
    let before = run_entry(&mut c, &alias).await;
    assert_eq!(before["state"], "resolved");

    let r = c
        .call(
            "set",
            json!({"path": format!("run://{alias}"), "state": "cancelled"}),
        )
        .await
        .expect("cancel answers");
    assert_eq!(r, json!({"ok": true, "alias": alias}));
    let run = c
        .call("getRun", json!({"run": alias}))
        .await
        .expect("getRun");
    assert_eq!(run["status"], 200, "a finished run stays finished");
    assert_eq!(run_entry(&mut c, &alias).await, before);
    let late = c.drain_notifications(Duration::from_millis(300)).await;
    assert!(
        !late.iter().any(|n| n["params"]["status"] == 499),
        "no 499 was announced: {late:?}"
    );

    // Any other state would make the entry disagree with the status.
    let refused = c
        .call(
            "set",
            json!({"path": format!("run://{alias}"), "state": "resolved"}),
        )
        .await
        .expect_err("only cancelled is accepted");
    assert_eq!(refused["code"], -32602);
    assert_eq!(run_entry(&mut c, &alias).await, before);
}

#[actix_web::test]
async fn continuing_a_run_carries_and_checks_its_temperature_and_flags() {
    let t = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = client(&t, root.path()).await;
    let (alias, last) = run_to_end(&mut c, ask(json!({"temperature": 0.5})), "hi").await;
    assert_eq!(last["params"]["status"], 200);
    assert_eq!(t.provider.requests()[0]["temperature"], 0.5);

    let r = c
        .call(
            "set",
            json!({"path": format!("run://{alias}"), "body": "again",
                   "attributes": {"mode": "ask", "temperature": 1.5, "noRepo": true}}),
        )
        .await
        .expect("continue");
    assert_eq!(r["alias"], alias);
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] == 200 && n["params"]["turn"] == 2
    })
    .await;
    let requests = t.provider.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1]["temperature"], 1.5,
        "the continuation's own temperature"
    );

    let refused = c
        .call_unchecked(
            "set",
            json!({"path": format!("run://{alias}"), "body": "too hot",
                   "attributes": {"mode": "ask", "temperature": 7}}),
        )
        .await
        .expect_err("temperature out of range");
    assert_eq!(
        refused["message"],
        "set run://: attributes.temperature must be between 0 and 2"
    );
    let wrong_type = c
        .call_unchecked(
            "set",
            json!({"path": format!("run://{alias}"), "body": "typed",
                   "attributes": {"mode": "ask", "noRepo": "yes"}}),
        )
        .await
        .expect_err("flags are typed on a continuation too");
    assert_eq!(wrong_type["code"], -32602);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.provider.requests().len(), 2, "no loop was queued");
}

#[actix_web::test]
async fn idle_run_actors_are_forgotten() {
    let t = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = client(&t, root.path()).await;
    for n in 0..3 {
        let (_, last) = run_to_end(&mut c, ask(json!({})), &format!("run {n}")).await;
        assert_eq!(last["params"]["status"], 200);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let alive = t.server.runs.active_actors().await;
        if alive == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{alive} run actor(s) still registered after their runs ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A forgotten run still takes new prompts.
    let (alias, _) = run_to_end(&mut c, ask(json!({})), "once more").await;
    c.call(
        "set",
        json!({"path": format!("run://{alias}"), "body": "and again", "attributes": {"mode": "ask"}}),
    )
    .await
    .expect("continue a forgotten run");
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] == 200 && n["params"]["turn"] == 2
    })
    .await;
}

/// The two orders a loop's end and a cancel can reach the store in: each
/// leaves the run in one consistent state.
#[actix_web::test]
async fn a_loops_end_and_a_cancel_never_interleave() {
    let t = start_server(vec![]).await;
    let store = &t.server.store;
    let project_id = store
        .run(UpsertProject {
            name: "p".into(),
            project_root: "/".into(),
            config_path: None,
        })
        .await
        .expect("project");
    let mut claimed = Vec::new();
    for alias in ["finished_first", "cancelled_first"] {
        let run = store
            .run(CreateRun {
                project_id,
                parent_run_id: None,
                alias: alias.into(),
                model: "fake".into(),
                temperature: None,
                persona: None,
                context_limit: None,
                prompt: "hi".into(),
                flags: serde_json::json!({}),
            })
            .await
            .expect("run");
        store
            .run(EnqueueLoop {
                run_id: run.id,
                mode: "ask".into(),
                model: None,
                prompt: "hi".into(),
                config: json!({}),
            })
            .await
            .expect("loop");
        let lp = store
            .run(ClaimNextLoop(run.id))
            .await
            .expect("claim")
            .expect("a loop");
        store
            .run(rummy::store::SetRunStatus {
                run_id: run.id,
                status: RunStatus::Running,
            })
            .await
            .expect("running");
        claimed.push((run, lp));
    }
    let status_of = |alias: &'static str| async move {
        store
            .run(GetRun {
                alias: alias.into(),
                project_id: None,
            })
            .await
            .expect("get")
            .expect("run")
            .status
    };

    let (run, lp) = &claimed[0];
    let finished = store
        .run(FinishLoop {
            run_id: run.id,
            loop_id: lp.id,
            status: RunStatus::Completed,
            result: json!({"status": 200}),
        })
        .await
        .expect("finish");
    assert!(finished);
    let aborted = store
        .run(AbortRun {
            run_id: run.id,
            reason: "late cancel".into(),
        })
        .await
        .expect("abort");
    assert!(aborted.is_none(), "nothing was in flight any more");
    assert_eq!(status_of("finished_first").await, 200);

    let (run, lp) = &claimed[1];
    let aborted = store
        .run(AbortRun {
            run_id: run.id,
            reason: "cancel".into(),
        })
        .await
        .expect("abort");
    assert!(aborted.is_some());
    let finished = store
        .run(FinishLoop {
            run_id: run.id,
            loop_id: lp.id,
            status: RunStatus::Completed,
            result: json!({"status": 200}),
        })
        .await
        .expect("finish");
    assert!(!finished, "an aborted loop is not finished again");
    assert_eq!(status_of("cancelled_first").await, 499);
}

#[actix_web::test]
async fn a_slow_run_can_still_be_cancelled_after_others_were_forgotten() {
    let t = start_server(vec![
        Reply::Content(r#"<update status="200">quick</update>"#.into()),
        Reply::Delayed(
            Duration::from_secs(60),
            r#"<update status="200">late</update>"#.into(),
        ),
    ])
    .await;
    let root = tempfile::tempdir().expect("root");
    let mut c = client(&t, root.path()).await;
    let (_, last) = run_to_end(&mut c, ask(json!({})), "quick").await;
    assert_eq!(last["params"]["status"], 200);
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "slow", "attributes": ask(json!({}))}),
        )
        .await
        .expect("start");
    let alias = r["alias"].as_str().expect("alias").to_string();
    c.wait_notification("run/progress", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] == "thinking"
    })
    .await;
    c.call(
        "set",
        json!({"path": format!("run://{alias}"), "state": "cancelled"}),
    )
    .await
    .expect("cancel");
    let state = c
        .wait_notification("run/state", LONG, |n| n["params"]["run"] == alias)
        .await;
    assert_eq!(state["params"]["status"], 499);
}
