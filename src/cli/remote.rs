//! A running server's WebSocket, for when that server holds the database:
//! the client side of the protocol (`rummy/hello`, `set run://`, `set` on a
//! proposal, `getRun`), with the notifications it pushes meanwhile queued
//! for the driver.

use super::driver::{Decision, Event, RunBackend, RunEnd, RunRequest};
use super::ws::{self, Ws};
use super::CliError;
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;

pub struct RemoteBackend {
    url: String,
    ws: Ws,
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
        let ws = ws::connect(url, token).await?;
        let mut backend = RemoteBackend {
            url: url.to_string(),
            ws,
            next_id: 1,
            queued: VecDeque::new(),
        };
        backend.call("rummy/hello", ws::hello_params(root)).await?;
        Ok(backend)
    }

    async fn read_frame(&mut self) -> Option<Value> {
        ws::read_frame(&mut self.ws).await
    }

    /// One request; its reply's `result`, or the server's error.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        self.ws
            .send(ws::request(id, method, params))
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
            return ws::reply_result(method, &frame);
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
