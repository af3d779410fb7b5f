//! A minimal JSON-RPC client over a real WebSocket: hello, start a run,
//! wait for the run's final `run/state`. Frames are not schema-checked
//! here (the integration tests do that); this client should cost little.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

/// Generous: a 1,000-turn run must fit.
const WAIT: Duration = Duration::from_secs(1_200);

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// Only the fields the driver reads, so big `history` arrays are skipped
/// rather than built into values.
#[derive(serde::Deserialize)]
struct Frame {
    id: Option<u64>,
    method: Option<String>,
    result: Option<Value>,
    error: Option<Value>,
    params: Option<StateParams>,
}

#[derive(serde::Deserialize)]
struct StateParams {
    run: Option<String>,
    status: Option<Value>,
    turn: Option<u64>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let url = format!("ws://{addr}/");
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        Client { ws, next_id: 1 }
    }

    async fn next(&mut self) -> Frame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the server answers in time")
                .expect("the server keeps the connection")
                .expect("the WebSocket reads");
            if let Message::Text(text) = msg {
                return serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("frame is not JSON-RPC ({e}): {text}"));
            }
        }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(frame.to_string()))
            .await
            .expect("the WebSocket writes");
        loop {
            let f = self.next().await;
            if f.id == Some(id) && f.method.is_none() {
                if let Some(e) = f.error {
                    panic!("{method} failed: {e}");
                }
                return f.result.unwrap_or(Value::Null);
            }
        }
    }

    pub async fn hello(&mut self, name: &str, root: &str) {
        self.call("rummy/hello", json!({"name": name, "projectRoot": root}))
            .await;
    }

    /// Starts an ask run named `alias` with this prompt; answers its alias.
    /// The alias is given because generated ones (model + milliseconds)
    /// collide when hundreds of runs start at once.
    pub async fn start_run(&mut self, alias: &str, prompt: &str) -> String {
        let r = self
            .call(
                "set",
                json!({"path": format!("run://{alias}"), "body": prompt,
                       "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
            )
            .await;
        r["alias"]
            .as_str()
            .expect("set run:// answers an alias")
            .to_string()
    }

    /// Waits for the run's `run/state` with a final status; answers
    /// (status, turn).
    pub async fn wait_end(&mut self, alias: &str) -> (i64, u64) {
        loop {
            let f = self.next().await;
            if f.method.as_deref() != Some("run/state") {
                continue;
            }
            let Some(p) = f.params else { continue };
            if p.run.as_deref() != Some(alias) {
                continue;
            }
            let status = p.status.as_ref().and_then(Value::as_i64).unwrap_or(0);
            if status != 102 {
                return (status, p.turn.unwrap_or(0));
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
