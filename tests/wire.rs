//! Connection-level behaviour over a real WebSocket: pipelined requests
//! behind `rummy/hello`, the close handshake, and what `rpc_log` keeps.

mod common;

use common::{start_server, TestServer};
use futures_util::{SinkExt, StreamExt};
use rummy::store::{GetEntry, GetRun, ListRpcLog};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound for "at once": far below the ~1 s the close used to take.
const PROMPT: Duration = Duration::from_millis(500);

async fn connect(server: &TestServer) -> Socket {
    let url = format!("ws://{}/", server.server.local_addr.expect("listening"));
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(&url),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    ws
}

async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::Text(frame.to_string()))
        .await
        .expect("send");
}

/// The next JSON text frame that carries an `id` (notifications skipped).
async fn next_reply(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a reply in time")
            .expect("socket open")
            .expect("read");
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).expect("JSON frame");
            if v.get("id").is_some() {
                return v;
            }
        }
    }
}

fn hello_frame(id: Value, root: &std::path::Path) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "rummy/hello",
           "params": {"name": "wire", "projectRoot": root.display().to_string()}})
}

#[actix_web::test]
async fn requests_sent_right_behind_hello_wait_for_its_binding() {
    let s = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut ws = connect(&s).await;
    // All frames leave in one write, before any reply is read.
    let frames = [
        hello_frame(json!(1), root.path()),
        json!({"jsonrpc": "2.0", "id": 2, "method": "getRuns", "params": {}}),
        json!({"jsonrpc": "2.0", "id": "three", "method": "getConstraints", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "discover"}),
    ];
    for frame in frames {
        ws.feed(Message::Text(frame.to_string()))
            .await
            .expect("queue a frame");
    }
    ws.flush().await.expect("send the frames");
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(next_reply(&mut ws).await);
    }
    // (id, error) of each reply, short enough to read in a failure.
    let seen: Vec<(Value, Value)> = replies
        .iter()
        .map(|r| (r["id"].clone(), r["error"].clone()))
        .collect();
    let by_id = |id: Value| {
        replies
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no reply {id} in {seen:?}"))
    };
    assert!(by_id(json!(1))["result"]["projectId"].is_i64(), "{seen:?}");
    assert!(by_id(json!(2))["result"].is_array(), "{seen:?}");
    assert!(by_id(json!("three"))["result"].is_array(), "{seen:?}");
    assert!(by_id(json!(4))["result"]["methods"].is_object(), "{seen:?}");
    // Hello is answered before the frames it held back.
    assert_eq!(replies[0]["id"], 1, "{seen:?}");
}

#[actix_web::test]
async fn a_failed_hello_releases_the_frames_behind_it_ungated() {
    let s = start_server(vec![]).await;
    let mut ws = connect(&s).await;
    for frame in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "rummy/hello", "params": {"projectRoot": 7}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "getRuns", "params": {}}),
    ] {
        ws.feed(Message::Text(frame.to_string()))
            .await
            .expect("queue a frame");
    }
    ws.flush().await.expect("send the frames");
    let first = next_reply(&mut ws).await;
    let second = next_reply(&mut ws).await;
    assert_eq!(first["id"], 1);
    assert_eq!(first["error"]["code"], -32602, "{first}");
    assert_eq!(second["id"], 2);
    assert_eq!(second["error"]["code"], -32002, "{second}");
}

/// Sends Close and returns how long until the socket is closed, after
/// asserting the server answered with a Close frame.
async fn close_and_time(ws: &mut Socket) -> Duration {
    let started = Instant::now();
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .expect("send close");
    let reply = tokio::time::timeout(PROMPT, ws.next())
        .await
        .expect("the server answers the close at once");
    match reply {
        Some(Ok(Message::Close(_))) => {}
        other => panic!("expected a Close frame, got {other:?}"),
    }
    let end = tokio::time::timeout(PROMPT, ws.next())
        .await
        .expect("the server closes the socket at once");
    assert!(
        matches!(end, None | Some(Err(_))),
        "expected the socket closed, got {end:?}"
    );
    started.elapsed()
}

#[actix_web::test]
async fn a_close_is_answered_and_the_socket_closed_at_once() {
    let s = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut total = Duration::ZERO;
    let rounds = 20;
    for i in 0..rounds {
        let mut ws = connect(&s).await;
        // Half the connections are bound, so a subscribed client is covered too.
        if i % 2 == 0 {
            send(&mut ws, hello_frame(json!(1), root.path())).await;
            next_reply(&mut ws).await;
        }
        total += close_and_time(&mut ws).await;
    }
    eprintln!(
        "close handshake to closed socket: {:?} on average over {rounds}",
        total / rounds
    );
    // The server is still serving.
    let mut ws = connect(&s).await;
    send(&mut ws, hello_frame(json!(1), root.path())).await;
    assert!(next_reply(&mut ws).await["result"].is_object());
}

#[actix_web::test]
async fn rpc_log_keeps_string_and_numeric_ids_apart() {
    let s = start_server(vec![]).await;
    let mut ws = connect(&s).await;
    for id in [json!("abc-1"), json!(17), json!("17")] {
        send(
            &mut ws,
            json!({"jsonrpc": "2.0", "id": id, "method": "ping"}),
        )
        .await;
        assert_eq!(next_reply(&mut ws).await["id"], id);
    }
    // A notification has no id to log; a ping after it shows it was handled.
    send(&mut ws, json!({"jsonrpc": "2.0", "method": "ping"})).await;
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 18, "method": "ping"}),
    )
    .await;
    next_reply(&mut ws).await;
    let rows = s
        .server
        .store
        .run(ListRpcLog {
            method: "ping".into(),
            limit: 10,
        })
        .await
        .expect("store");
    let mut ids: Vec<Option<String>> = rows.into_iter().rev().map(|r| r.rpc_id).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            None,
            Some(r#""17""#.to_string()),
            Some(r#""abc-1""#.to_string()),
            Some("17".to_string()),
            Some("18".to_string()),
        ]
    );
}

#[actix_web::test]
async fn rpc_log_keeps_a_big_write_cut_with_a_marker() {
    let s = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = common::hello_client(
        s.server.local_addr.expect("listening"),
        "big",
        &root.path().display().to_string(),
    )
    .await;
    let run = c
        .call(
            "set",
            json!({"path": "run://", "body": "Say done.", "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    let alias = run["alias"].as_str().expect("alias").to_string();
    c.wait_notification("run/state", Duration::from_secs(20), |n| {
        n["params"]["run"] == alias.as_str() && n["params"]["status"] != 102
    })
    .await;
    let body = "x".repeat(1 << 20);
    c.call(
        "set",
        json!({"run": alias, "path": "known://big", "body": body}),
    )
    .await
    .expect("the write succeeds");
    // The entry itself is whole.
    let run = s
        .server
        .store
        .run(GetRun {
            alias: alias.clone(),
            project_id: None,
        })
        .await
        .expect("store")
        .expect("run");
    let entry = s
        .server
        .store
        .run(GetEntry {
            run_id: run.id,
            path: "known://big".into(),
        })
        .await
        .expect("store")
        .expect("entry");
    assert_eq!(entry.body.len(), 1 << 20);
    let rows = s
        .server
        .store
        .run(ListRpcLog {
            method: "set".into(),
            limit: 10,
        })
        .await
        .expect("store");
    let row = rows
        .iter()
        .find(|r| {
            r.params
                .as_deref()
                .is_some_and(|p| p.contains("known://big"))
        })
        .expect("the write is logged");
    let params = row.params.as_deref().expect("params");
    assert!(params.len() < 8 * 1024, "{} bytes logged", params.len());
    let logged: Value = serde_json::from_str(params).expect("logged params are JSON");
    assert_eq!(logged["path"], "known://big");
    assert_eq!(logged["run"], alias.as_str());
    let cut = logged["body"].as_str().expect("body");
    assert!(cut.starts_with("xxxx"), "{cut}");
    assert!(
        cut.ends_with(&format!("…[truncated {} bytes]", (1 << 20) - 1024)),
        "{}",
        &cut[cut.len().saturating_sub(60)..]
    );
    // Results stay JSON too.
    for r in &rows {
        if let Some(result) = &r.result {
            serde_json::from_str::<Value>(result)
                .unwrap_or_else(|e| panic!("result of {} is not JSON ({e})", r.method));
        }
    }
}
