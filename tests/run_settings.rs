//! A run's stored settings after it started, over a real WebSocket:
//! `set run://alias` with attributes and no body configures its next loops
//! (from any client of the project), a later loop inherits the flags and
//! temperature it omits, and `run/rename` / `mv run://a run://b` rename it.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const DONE: &str = r#"<update status="200">done</update>"#;

async fn setup(replies: Vec<Reply>) -> (TestServer, tempfile::TempDir, WsClient, WsClient) {
    let t = start_server(replies).await;
    let root = tempfile::tempdir().expect("root");
    let addr = t.server.local_addr.expect("listening");
    let a = hello_client(addr, "settings", &root.path().to_string_lossy()).await;
    let b = hello_client(addr, "settings", &root.path().to_string_lossy()).await;
    (t, root, a, b)
}

async fn finish(c: &mut WsClient, alias: &str) {
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] == 200
    })
    .await;
}

async fn start(c: &mut WsClient, attributes: Value) -> String {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "first", "attributes": attributes}),
        )
        .await
        .expect("run starts");
    r["alias"].as_str().expect("alias").to_string()
}

async fn prompt(c: &mut WsClient, alias: &str, attributes: Value) {
    c.call(
        "set",
        json!({"path": format!("run://{alias}"), "body": "next", "attributes": attributes}),
    )
    .await
    .expect("prompt taken");
}

fn system_text(t: &TestServer, n: usize) -> String {
    t.provider.requests()[n]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn omitted_flags_inherit_the_runs_stored_ones_and_configure_changes_them() {
    let (t, _root, mut a, mut b) = setup(vec![
        Reply::Content(DONE.into()),
        Reply::Content(DONE.into()),
        Reply::Content(DONE.into()),
    ])
    .await;
    let alias = start(
        &mut a,
        json!({"model": "fake", "mode": "act", "noInteraction": true, "noRepo": true}),
    )
    .await;
    finish(&mut a, &alias).await;
    assert!(!system_text(&t, 0).contains("ask_user"));

    // A continuation that names no flags keeps noInteraction.
    prompt(&mut a, &alias, json!({"mode": "act"})).await;
    finish(&mut a, &alias).await;
    assert!(
        !system_text(&t, 1).contains("ask_user"),
        "the stored noInteraction is inherited"
    );

    // Another client configures the run: attributes, no body.
    let r = b
        .call(
            "set",
            json!({"path": format!("run://{alias}"),
                   "attributes": {"noInteraction": false, "temperature": 1.25}}),
        )
        .await
        .expect("configured");
    assert_eq!(r["alias"], alias.as_str());
    assert_eq!(t.provider.requests().len(), 2, "configuring starts nothing");
    let run = a.call("getRun", json!({"run": alias})).await.expect("run");
    assert_eq!(run["temperature"], 1.25);

    prompt(&mut a, &alias, json!({"mode": "act"})).await;
    finish(&mut a, &alias).await;
    assert!(
        system_text(&t, 2).contains("ask_user"),
        "the new flag applies"
    );
    assert_eq!(
        t.provider.requests()[2]["temperature"],
        1.25,
        "an omitted temperature is the run's stored one"
    );
}

#[actix_web::test]
async fn configure_refuses_bad_settings_and_changes_nothing() {
    let (_t, _root, mut a, _b) = setup(vec![Reply::Content(DONE.into())]).await;
    let alias = start(
        &mut a,
        json!({"model": "fake", "mode": "ask", "noRepo": true}),
    )
    .await;
    finish(&mut a, &alias).await;
    for (attributes, needle) in [
        (json!({"model": "nope"}), "Unknown model alias 'nope'"),
        (
            json!({"temperature": 9}),
            "temperature must be between 0 and 2",
        ),
        (
            json!({"contextLimit": 10}),
            "contextLimit must be at least 1024",
        ),
    ] {
        let e = a
            .call_unchecked(
                "set",
                json!({"path": format!("run://{alias}"), "attributes": attributes}),
            )
            .await
            .expect_err("refused");
        assert_eq!(e["code"], -32602, "{e}");
        assert!(
            e["message"].as_str().unwrap_or_default().contains(needle),
            "{e}"
        );
    }
    let run = a.call("getRun", json!({"run": alias})).await.expect("run");
    assert_eq!(run["model"], "fake");
    assert_eq!(run["temperature"], Value::Null);
    assert_eq!(run["context_limit"], Value::Null);
}

#[actix_web::test]
async fn runs_are_renamed_by_run_rename_and_by_mv_and_taken_or_busy_aliases_are_refused() {
    let (_t, _root, mut a, mut b) = setup(vec![
        Reply::Content(DONE.into()),
        Reply::Content(DONE.into()),
        Reply::Delayed(Duration::from_millis(1500), DONE.into()),
    ])
    .await;
    let first = start(
        &mut a,
        json!({"model": "fake", "mode": "ask", "noRepo": true}),
    )
    .await;
    finish(&mut a, &first).await;
    let other = start(
        &mut a,
        json!({"model": "fake", "mode": "ask", "noRepo": true}),
    )
    .await;
    finish(&mut a, &other).await;

    let r = b
        .call("run/rename", json!({"run": first, "name": "renamed"}))
        .await
        .expect("renamed");
    assert_eq!(r, json!({"ok": true, "alias": "renamed"}));
    let run = a
        .call("getRun", json!({"run": "renamed"}))
        .await
        .expect("new name");
    assert_eq!(run["status"], 200);
    let e = a
        .call_unchecked("getRun", json!({"run": first}))
        .await
        .expect_err("old name gone");
    assert_eq!(e["code"], -32602);
    let entries = a
        .call(
            "getEntries",
            json!({"run": "renamed", "pattern": "run://*"}),
        )
        .await
        .expect("entries");
    assert_eq!(entries[0]["path"], "run://renamed", "{entries}");

    let e = a
        .call_unchecked("run/rename", json!({"run": "renamed", "name": other}))
        .await
        .expect_err("taken");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already taken"),
        "{e}"
    );
    a.call("getRun", json!({"run": "renamed"}))
        .await
        .expect("unchanged by the refusal");
    let e = a
        .call_unchecked("run/rename", json!({"run": "renamed", "name": "a/b"}))
        .await
        .expect_err("bad name");
    assert_eq!(e["code"], -32602);

    a.call(
        "mv",
        json!({"run": "renamed", "from": "run://renamed", "to": "run://moved"}),
    )
    .await
    .expect("mv renames");
    a.call("getRun", json!({"run": "moved"}))
        .await
        .expect("moved");

    // A run at work keeps its name.
    prompt(&mut a, "moved", json!({"mode": "ask"})).await;
    let e = b
        .call_unchecked("run/rename", json!({"run": "moved", "name": "later"}))
        .await
        .expect_err("busy");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("working"),
        "{e}"
    );
    finish(&mut a, "moved").await;
}
