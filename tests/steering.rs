//! Steering: a prompt sent to a run whose loop is running, from any client
//! of the project, joins that loop's next turn; `queue: true`, or a mode or
//! flags the running loop does not have, make it the next loop instead.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn setup() -> (TestServer, tempfile::TempDir, WsClient, WsClient, String) {
    let t = start_server(vec![
        // The first turn is slow, so the steered prompt arrives while it runs.
        Reply::Delayed(
            Duration::from_millis(700),
            r#"<update status="102">working on it</update>"#.into(),
        ),
        Reply::Content(r#"<update status="200">done</update>"#.into()),
    ])
    .await;
    let root = tempfile::tempdir().expect("root");
    let addr = t.server.local_addr.expect("listening");
    let mut a = hello_client(addr, "p", &root.path().to_string_lossy()).await;
    let b = hello_client(addr, "p", &root.path().to_string_lossy()).await;
    let r = a
        .call(
            "set",
            json!({"path": "run://", "body": "first task",
                   "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let deadline = tokio::time::Instant::now() + LONG;
    while t.provider.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no provider call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (t, root, a, b, alias)
}

async fn steer(b: &mut WsClient, alias: &str, attributes: Value) {
    let r = b
        .call(
            "set",
            json!({"path": format!("run://{alias}"), "body": "also mention the moon",
                   "attributes": attributes}),
        )
        .await
        .expect("the prompt is taken");
    assert_eq!(r["alias"], alias);
}

async fn settle(a: &mut WsClient, t: &TestServer, alias: &str, requests: usize) {
    let deadline = tokio::time::Instant::now() + LONG;
    while t.provider.requests().len() < requests {
        assert!(
            tokio::time::Instant::now() < deadline,
            "too few provider calls"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.provider.requests().len(), requests, "no extra loop ran");
}

fn user_text(t: &TestServer, n: usize) -> String {
    t.provider.requests()[n]["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn a_prompt_from_another_client_joins_the_running_loops_next_turn() {
    let (t, _root, mut a, mut b, alias) = setup().await;
    steer(&mut b, &alias, json!({"mode": "ask"})).await;
    settle(&mut a, &t, &alias, 2).await;
    let second = user_text(&t, 1);
    assert!(
        second.contains(r#"path="prompt://2""#) && second.contains("also mention the moon"),
        "the steered prompt is turn 2's prompt: {second}"
    );
    assert!(!user_text(&t, 0).contains("moon"));
}

#[actix_web::test]
async fn queue_true_keeps_the_fifo() {
    let (t, _root, mut a, mut b, alias) = setup().await;
    steer(&mut b, &alias, json!({"mode": "ask", "queue": true})).await;
    // The first loop ends after its two calls; the queued one makes a third.
    settle(&mut a, &t, &alias, 3).await;
    assert!(!user_text(&t, 1).contains("moon"));
    assert!(user_text(&t, 2).contains("also mention the moon"));
}

#[actix_web::test]
async fn an_act_prompt_never_widens_an_ask_loop() {
    let (t, _root, mut a, mut b, alias) = setup().await;
    steer(&mut b, &alias, json!({"mode": "act"})).await;
    settle(&mut a, &t, &alias, 3).await;
    assert!(!user_text(&t, 1).contains("moon"));
    let third = user_text(&t, 2);
    assert!(third.contains("also mention the moon") && third.contains(r#"mode="act""#));
}
