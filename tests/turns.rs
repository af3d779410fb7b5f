//! Turn-level behaviour over a real WebSocket: refused model writes and a
//! clean shutdown with a run in flight.

mod common;

use common::{hello_client, start_server, Reply, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn start_ask(c: &mut WsClient, prompt: &str) -> String {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": prompt, "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    r["alias"].as_str().expect("alias").to_string()
}

#[actix_web::test]
async fn a_refused_model_write_fails_with_permission_and_aborts_the_rest() {
    let t = start_server(vec![Reply::Content(
        r#"<set path="prompt://9">hijack</set><set path="known://after">x</set><update status="200">done</update>"#
            .into(),
    )])
    .await;
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &common::project_dir("p"),
    )
    .await;
    let alias = start_ask(&mut c, "hi").await;
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    // The struck first turn could not conclude; the second one did.
    assert_eq!(last["params"]["status"], 200);
    assert_eq!(last["params"]["turn"], 2);
    let history: &Vec<Value> = last["params"]["history"].as_array().expect("history");
    let by_path = |p: &str| history.iter().find(|h| h["path"] == p).cloned();
    let refused = by_path("log://turn_1/set/prompt%3A//9").expect("refused set is logged");
    assert_eq!(refused["state"], "failed");
    assert_eq!(refused["outcome"], "permission");
    let aborted = by_path("log://turn_1/set/known%3A//after").expect("later command is logged");
    assert_eq!(aborted["outcome"], "aborted");
    assert!(history.iter().any(|h| h["outcome"] == "status:403"
        && h["body"]
            .as_str()
            .unwrap_or_default()
            .starts_with("403: writer \"model\" not permitted for scheme \"prompt\"")));
    let entries = c
        .call("getEntries", json!({"run": alias, "pattern": "known://*"}))
        .await
        .expect("entries");
    assert_eq!(entries, json!([]), "nothing after the refusal was written");
}

#[actix_web::test]
async fn shutdown_ends_runs_in_flight_and_records_it() {
    let t = start_server(vec![Reply::Delayed(
        Duration::from_secs(60),
        r#"<update status="200">late</update>"#.into(),
    )])
    .await;
    let server = &t.server;
    let mut c = hello_client(
        server.local_addr.expect("listening"),
        "p",
        &common::project_dir("p"),
    )
    .await;
    let alias = start_ask(&mut c, "slow").await;
    c.wait_notification("run/progress", LONG, |n| {
        n["params"]["status"] == "thinking"
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown does not wait for the provider");
    let run = server
        .store
        .run(rummy::store::GetRun {
            alias,
            project_id: None,
        })
        .await
        .expect("store")
        .expect("run row");
    assert_eq!(run.status, 499);
}

#[actix_web::test]
async fn a_cancel_right_after_a_continuation_stops_it() {
    let t = start_server(vec![]).await;
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &common::project_dir("p"),
    )
    .await;
    let alias = start_ask(&mut c, "first").await;
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] == 200
    })
    .await;
    t.provider.push_replies([Reply::Delayed(
        Duration::from_secs(60),
        r#"<update status="200">finished anyway</update>"#.into(),
    )]);
    c.call(
        "set",
        json!({"path": format!("run://{alias}"), "body": "more", "attributes": {"mode": "ask"}}),
    )
    .await
    .expect("continue");
    // A mixed-case scheme still reaches the run lifecycle.
    c.call(
        "set",
        json!({"path": format!("RUN://{alias}"), "state": "cancelled"}),
    )
    .await
    .expect("cancel");
    let end = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(end["params"]["status"], 499);
}

#[actix_web::test]
async fn a_fragmented_request_is_answered() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;
    let t = start_server(vec![]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/",
        t.server.local_addr.expect("listening")
    ))
    .await
    .expect("connect");
    let (a, b) = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#.split_at(10);
    ws.send(Message::Frame(Frame::message(
        a.as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .expect("first fragment");
    ws.send(Message::Frame(Frame::message(
        b.as_bytes().to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .expect("last fragment");
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a reply")
        .expect("a frame")
        .expect("no error");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": {}, "id": 7}));
}

#[actix_web::test]
async fn model_sets_change_visibility_and_bodies_by_pattern() {
    let t = start_server(vec![
        Reply::Content(r#"<set path="known://a">A</set><update status="102">noted</update>"#.into()),
        Reply::Content(
            r#"<set path="known://*" visibility="archived"/><set path="known://*">B</set><set path="known://none_*" visibility="visible"/><update status="200">done</update>"#
                .into(),
        ),
    ])
    .await;
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &common::project_dir("p"),
    )
    .await;
    let alias = start_ask(&mut c, "patterns").await;
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(last["params"]["status"], 200);
    let history = last["params"]["history"].as_array().expect("history");
    let body_of = |p: &str| {
        history
            .iter()
            .find(|h| h["path"] == p)
            .map(|h| (h["state"].clone(), h["body"].clone()))
    };
    assert_eq!(
        body_of("log://turn_2/set/known%3A//*"),
        Some((json!("resolved"), json!("known://a set to archived")))
    );
    assert_eq!(
        body_of("log://turn_2/set/known%3A//*_1"),
        Some((
            json!("resolved"),
            json!("set path=\"known://*\": 1 matched (1 tokens)\nknown://a (1)")
        ))
    );
    assert_eq!(
        body_of("log://turn_2/set/known%3A//none_*"),
        Some((json!("failed"), json!("known://none_* not found")))
    );
    let entries = c
        .call(
            "getEntries",
            json!({"run": alias, "pattern": "known://*", "bodyFilter": "B"}),
        )
        .await
        .expect("entries");
    assert_eq!(entries[0]["path"], "known://a");
    assert_eq!(entries[0]["visibility"], "archived");
}
