//! Proposals no client decides: a yolo run has the server accept them
//! through the same path a client's acceptance takes (while `ask_user`
//! still waits for a person), and `RUMMY_PROPOSAL_TIMEOUT` fails one left
//! unanswered.

mod common;

use common::{hello_client, test_vars, FakeProvider, Reply, WsClient};
use rummy::{Config, Server, ServerHandle, StartOptions};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn server(
    provider: &FakeProvider,
    home: &std::path::Path,
    env: &[(&str, &str)],
) -> ServerHandle {
    let mut vars = test_vars(home, &provider.base_url());
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Server::start(
        Config::from_vars(vars).expect("config"),
        StartOptions::default(),
    )
    .await
    .expect("starts")
}

async fn act(c: &mut WsClient, extra: Value) -> String {
    let mut attributes = json!({"model": "fake", "mode": "act", "noRepo": true});
    if let (Some(a), Some(e)) = (attributes.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "write it", "attributes": attributes}),
        )
        .await
        .expect("run starts");
    r["alias"].as_str().expect("alias").to_string()
}

async fn end(c: &mut WsClient, alias: &str) -> Value {
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] != 102
    })
    .await
}

#[actix_web::test]
async fn a_yolo_run_has_its_file_write_accepted_by_the_server() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="notes/todo.md">buy milk</set><update status="102">wrote it</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">done</update>"#.into()),
    ])
    .await;
    let home = tempfile::tempdir().expect("home");
    let s = server(&provider, home.path(), &[]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        s.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let alias = act(&mut c, json!({"yolo": true})).await;
    let last = end(&mut c, &alias).await;
    assert_eq!(last["params"]["status"], 200);
    assert_eq!(
        std::fs::read_to_string(root.path().join("notes/todo.md")).expect("written"),
        "buy milk"
    );
    // Clients still see the proposal and its resolution.
    let proposal = c
        .wait_notification("run/proposal", LONG, |n| n["params"]["run"] == alias)
        .await;
    let path = proposal["params"]["proposed"][0]["path"].clone();
    let resolved = c
        .wait_notification("run/resolved", LONG, |n| n["params"]["path"] == path)
        .await;
    assert_eq!(resolved["params"]["state"], "resolved");
    s.stop().await;
}

#[actix_web::test]
async fn every_run_is_yolo_under_rummy_yolo_but_ask_user_still_waits() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="a.txt">one</set><ask_user question="Which colour?">red; blue</ask_user><update status="102">asked</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">done</update>"#.into()),
    ])
    .await;
    let home = tempfile::tempdir().expect("home");
    let s = server(&provider, home.path(), &[("RUMMY_YOLO", "1")]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        s.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let alias = act(&mut c, json!({})).await;
    let question = c
        .wait_notification("run/proposal", LONG, |n| {
            n["params"]["proposed"][0]["path"]
                .as_str()
                .is_some_and(|p| p.contains("ask_user"))
        })
        .await;
    assert_eq!(
        std::fs::read_to_string(root.path().join("a.txt")).expect("accepted by the server"),
        "one"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.requests().len(), 1, "the question is still open");
    let path = question["params"]["proposed"][0]["path"].clone();
    c.call(
        "set",
        json!({"run": alias, "path": path, "state": "resolved", "body": "blue"}),
    )
    .await
    .expect("answered");
    assert_eq!(end(&mut c, &alias).await["params"]["status"], 200);
    assert!(provider.requests()[1].to_string().contains("blue"));
    s.stop().await;
}

#[actix_web::test]
async fn an_unanswered_proposal_fails_on_the_timeout_and_the_run_goes_on() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="late.txt">never</set><update status="102">waiting</update>"#.into(),
        ),
        Reply::Content(r#"<update status="200">gave up on it</update>"#.into()),
    ])
    .await;
    let home = tempfile::tempdir().expect("home");
    let s = server(&provider, home.path(), &[("RUMMY_PROPOSAL_TIMEOUT", "1")]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        s.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let alias = act(&mut c, json!({})).await;
    let proposal = c
        .wait_notification("run/proposal", LONG, |n| n["params"]["run"] == alias)
        .await;
    let path = proposal["params"]["proposed"][0]["path"].clone();
    let resolved = c
        .wait_notification("run/resolved", LONG, |n| n["params"]["path"] == path)
        .await;
    assert_eq!(resolved["params"]["state"], "failed");
    assert_eq!(resolved["params"]["outcome"], "timeout");
    assert_eq!(end(&mut c, &alias).await["params"]["status"], 200);
    assert!(
        !root.path().join("late.txt").exists(),
        "nothing was written"
    );
    let second = provider.requests()[1].to_string();
    assert!(
        second.contains("RUMMY_PROPOSAL_TIMEOUT"),
        "the model hears why"
    );
    s.stop().await;
}
