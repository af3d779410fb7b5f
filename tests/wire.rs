//! Connection-level behaviour over a real WebSocket: pipelined requests
//! behind `rummy/hello`, the close handshake, and what `rpc_log` keeps.

mod common;

use common::{start_server, TestServer};
use futures_util::{SinkExt, StreamExt};
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
    let url = format!("ws://{}/", server.server.local_addr);
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
