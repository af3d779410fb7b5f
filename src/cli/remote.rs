//! A running server's WebSocket, for when that server holds the database:
//! the client side of the protocol (`rummy/hello`, `set run://`, `set` on a
//! proposal, `getRun`), with the notifications it pushes meanwhile queued
//! for the driver.

use super::driver::{Decision, Event, RunBackend, RunEnd, RunRequest};
use super::CliError;
use crate::protocol::PROTOCOL_VERSION;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// JSON-RPC "invalid params": the server refused what we asked for.
const INVALID_PARAMS: i64 = -32602;

pub struct RemoteBackend {
    url: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Notifications that arrived while waiting for a reply.
    queued: VecDeque<Value>,
}

impl RemoteBackend {
    /// Connects (with the bearer token when the server wants one) and says
    /// hello for the project at `root`.
    pub async fn connect(
        url: &str,
        token: Option<&str>,
        root: &Path,
    ) -> Result<RemoteBackend, CliError> {
        let failed = |e: &dyn std::fmt::Display| {
            CliError::Failed(format!("cannot connect to the server at {url}: {e}"))
        };
        let mut request = url.into_client_request().map_err(|e| failed(&e))?;
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| CliError::Usage("RUMMY_AUTH_TOKEN is not a valid header".into()))?;
            request.headers_mut().insert("Authorization", value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| failed(&e))?;
        let mut backend = RemoteBackend {
            url: url.to_string(),
            ws,
            next_id: 1,
            queued: VecDeque::new(),
        };
        let root = root.to_string_lossy().into_owned();
        backend
            .call(
                "rummy/hello",
                json!({"name": root, "projectRoot": root, "clientVersion": PROTOCOL_VERSION}),
            )
            .await?;
        Ok(backend)
    }

    async fn read_frame(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => match serde_json::from_str(&text) {
                    Ok(v) => return Some(v),
                    Err(e) => tracing::warn!("the server sent a frame that is not JSON: {e}"),
                },
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// One request; its reply's `result`, or the server's error.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(frame.to_string()))
            .await
            .map_err(|e| CliError::Failed(format!("{method}: {e}")))?;
        loop {
            let Some(frame) = self.read_frame().await else {
                return Err(CliError::Failed(format!(
                    "the server at {} closed the connection during {method}",
                    self.url
                )));
            };
            if frame.get("id") != Some(&json!(id)) {
                if frame.get("method").is_some() {
                    self.queued.push_back(frame);
                }
                continue;
            }
            if let Some(error) = frame.get("error") {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string();
                return Err(
                    if error.get("code").and_then(Value::as_i64) == Some(INVALID_PARAMS) {
                        CliError::Usage(message)
                    } else {
                        CliError::Failed(format!("{method}: {message}"))
                    },
                );
            }
            return Ok(frame.get("result").cloned().unwrap_or(Value::Null));
        }
    }
}

#[async_trait::async_trait(?Send)]
impl RunBackend for RemoteBackend {
    fn describe(&self) -> String {
        format!("the server at {}", self.url)
    }

    async fn start(&mut self, req: &RunRequest) -> Result<String, CliError> {
        let mut attributes = json!({"model": req.model, "mode": req.mode.as_str()});
        if req.yolo {
            attributes["yolo"] = json!(true);
        }
        let result = self
            .call(
                "set",
                json!({"path": "run://", "body": req.prompt, "attributes": attributes}),
            )
            .await?;
        result
            .get("alias")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| CliError::Failed(format!("set run:// answered no alias: {result}")))
    }

    async fn next_event(&mut self) -> Option<Event> {
        if let Some(frame) = self.queued.pop_front() {
            return Some(Event::from_frame(&frame));
        }
        // Replies nobody waits for (none are sent) are skipped.
        loop {
            let frame = self.read_frame().await?;
            if frame.get("method").is_some() {
                return Some(Event::from_frame(&frame));
            }
        }
    }

    async fn resolve(
        &mut self,
        alias: &str,
        path: &str,
        decision: Decision,
    ) -> Result<(), CliError> {
        let (state, body) = match decision {
            Decision::Accept(body) => ("resolved", body),
            Decision::Reject(body) => ("cancelled", body),
        };
        let mut params = json!({"run": alias, "path": path, "state": state});
        if let Some(body) = body {
            params["body"] = json!(body);
        }
        self.call("set", params).await.map(|_| ())
    }

    async fn cancel(&mut self, alias: &str, reason: &str) -> Result<(), CliError> {
        self.call(
            "set",
            json!({"path": format!("run://{alias}"), "state": "cancelled", "outcome": reason}),
        )
        .await
        .map(|_| ())
    }

    async fn finish(&mut self, alias: &str) -> Result<RunEnd, CliError> {
        let run = self.call("getRun", json!({"run": alias})).await?;
        Ok(RunEnd {
            status: run.get("status").and_then(Value::as_i64).unwrap_or(0),
            summary: run
                .get("last_summary")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    async fn close(&mut self) {
        // The server may be gone already; nothing is left to tell it.
        let _ = self.ws.close(None).await;
    }
}
