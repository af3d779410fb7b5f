//! `rummy acp` as a WebSocket client of the process that holds the
//! database, so several editor windows share one engine instead of
//! fighting over its file. `rummy/hello` binds a connection to one
//! project, so there is one connection per project the sessions work in;
//! each is multiplexed: a reader task routes replies by JSON-RPC id to
//! the waiting caller and fans notifications out to the prompt turns
//! subscribed to it.

use super::backend::{Begin, Loaded};
use crate::cli::ws;
use crate::exec::{ExecEvent, ExecLimits, ExecOutcome, ExecRequest};
use crate::protocol::notifications::{RunLogItem, UnknownItem};
use crate::protocol::runs::{GetRunResult, TurnText};
use crate::protocol::session::HelloResult;
use crate::protocol::EntryState;
use crate::run::actor::Resolution;
use agent_client_protocol::Error;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a task panicked; the map is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn internal(message: impl ToString) -> Error {
    Error::internal_error().data(message.to_string())
}

/// The server holding the database, and our connections to it.
pub struct Remote {
    pub url: String,
    token: Option<String>,
    /// For the commands this client accepts and runs (RUMMY_SH_TIMEOUT, caps).
    limits: ExecLimits,
    /// One connection per project, by project id.
    conns: Mutex<HashMap<i64, Arc<Conn>>>,
    /// The project ids hello answered, by canonical root.
    projects: Mutex<HashMap<PathBuf, i64>>,
}

/// One multiplexed WebSocket connection, bound to one project.
struct Conn {
    url: String,
    out: mpsc::UnboundedSender<Message>,
    next_id: AtomicU64,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Value>>>>,
    /// The reader saw the connection end: no reply will come any more.
    closed: Arc<AtomicBool>,
}

impl Conn {
    async fn open(url: &str, token: Option<&str>) -> Result<Arc<Conn>, String> {
        let (mut sink, mut stream) = ws::connect(url, token)
            .await
            .map_err(|e| e.to_string())?
            .split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Value>>>> = Arc::default();
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let closed = Arc::new(AtomicBool::new(false));
        let (replies, fanout, ended) = (pending.clone(), subscribers.clone(), closed.clone());
        let server = url.to_string();
        tokio::spawn(async move {
            while let Some(frame) = ws::read_frame(&mut stream).await {
                if frame.get("method").is_some() {
                    lock(&fanout).retain(|s| s.send(frame.clone()).is_ok());
                } else if let Some(id) = frame.get("id").and_then(Value::as_u64) {
                    if let Some(waiting) = lock(&replies).remove(&id) {
                        let _ = waiting.send(frame);
                    }
                }
            }
            tracing::warn!("the server at {server} closed the connection");
            // Set before the senders go, so a call registered after the
            // clearing sees it. Dropping the senders ends every waiting
            // call and prompt turn.
            ended.store(true, Ordering::SeqCst);
            lock(&replies).clear();
            lock(&fanout).clear();
        });
        Ok(Arc::new(Conn {
            url: url.to_string(),
            out,
            next_id: AtomicU64::new(1),
            pending,
            subscribers,
            closed,
        }))
    }

    /// One request; its result, or the server's error as text.
    async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        if self.closed.load(Ordering::SeqCst)
            || self.out.send(ws::request(id, method, params)).is_err()
        {
            lock(&self.pending).remove(&id);
        }
        let frame = rx.await.map_err(|_| {
            format!(
                "the server at {} closed the connection during {method}",
                self.url
            )
        })?;
        ws::reply_result(method, &frame).map_err(|e| e.to_string())
    }
}

impl Remote {
    pub fn new(url: String, token: Option<String>, limits: ExecLimits) -> Remote {
        Remote {
            url,
            token,
            limits,
            conns: Mutex::default(),
            projects: Mutex::default(),
        }
    }

    fn conn(&self, project_id: i64) -> Result<Arc<Conn>, String> {
        lock(&self.conns)
            .get(&project_id)
            .cloned()
            .ok_or_else(|| format!("no connection for project {project_id}"))
    }

    async fn call(&self, project_id: i64, method: &str, params: Value) -> Result<Value, String> {
        self.conn(project_id)?.call(method, params).await
    }

    /// Says hello for `cwd` on a connection of its own (the server checks
    /// the root as it checks any client's).
    pub async fn project(&self, cwd: PathBuf) -> Result<(i64, PathBuf), Error> {
        let root = cwd
            .canonicalize()
            .map_err(|e| Error::invalid_params().data(format!("{}: {e}", cwd.display())))?;
        if let Some(id) = lock(&self.projects).get(&root).copied() {
            // A later session in the same project reuses its connection.
            return Ok((id, root));
        }
        let conn = Conn::open(&self.url, self.token.as_deref())
            .await
            .map_err(internal)?;
        let hello = conn
            .call("rummy/hello", ws::hello_params(&root))
            .await
            .map_err(|e| Error::invalid_params().data(e))?;
        let hello: HelloResult = serde_json::from_value(hello).map_err(internal)?;
        lock(&self.conns).entry(hello.project_id).or_insert(conn);
        lock(&self.projects).insert(root.clone(), hello.project_id);
        Ok((hello.project_id, root))
    }

    async fn get_run(&self, project_id: i64, alias: &str) -> Result<GetRunResult, String> {
        let run = self
            .call(project_id, "getRun", json!({"run": alias}))
            .await?;
        serde_json::from_value(run).map_err(|e| format!("getRun answered: {e}"))
    }

    /// `getEntries` of the run (bodies included).
    async fn entries(
        &self,
        project_id: i64,
        alias: &str,
        mut params: Value,
    ) -> Result<Vec<Value>, String> {
        params["run"] = json!(alias);
        params["withBody"] = json!(true);
        let rows = self.call(project_id, "getEntries", params).await?;
        Ok(rows.as_array().cloned().unwrap_or_default())
    }

    /// The run's history as `run/state` has it: `getRun`'s log, with each
    /// entry's state and outcome from `getEntries`.
    pub async fn load(&self, project_id: i64, alias: &str) -> Result<Loaded, Error> {
        let run = self
            .get_run(project_id, alias)
            .await
            .map_err(|e| Error::invalid_params().data(e))?;
        let rows = self
            .entries(project_id, alias, json!({"pattern": "**"}))
            .await
            .map_err(internal)?;
        let states: HashMap<String, (EntryState, Option<String>)> = rows
            .iter()
            .filter_map(|r| {
                let path = r.get("path")?.as_str()?.to_string();
                let state = serde_json::from_value(r.get("state")?.clone()).ok()?;
                let outcome = r.get("outcome").and_then(Value::as_str).map(str::to_string);
                Some((path, (state, outcome)))
            })
            .collect();
        let history = run
            .context
            .history
            .into_iter()
            .map(|h| {
                let (state, outcome) = states
                    .get(&h.path)
                    .cloned()
                    .unwrap_or((EntryState::Resolved, None));
                RunLogItem {
                    tool: h.tool,
                    state,
                    outcome,
                    attributes: h
                        .attributes
                        .map_or_else(|| "{}".to_string(), |a| a.to_string()),
                    path: h.path,
                    body: h.body,
                    turn: h.turn,
                }
            })
            .collect();
        let unknowns = rows
            .iter()
            .filter(|r| r.get("scheme").and_then(Value::as_str) == Some("unknown"))
            .filter_map(|r| {
                Some(UnknownItem {
                    path: r.get("path")?.as_str()?.to_string(),
                    body: r.get("body")?.as_str()?.to_string(),
                })
            })
            .collect();
        Ok(Loaded {
            history,
            unknowns,
            reasoning: run.context.reasoning,
            model: run.model,
            // The server keeps the run's flags to itself; a later "allow
            // always" stores yolo again.
            yolo: false,
            run_id: None,
        })
    }

    pub fn subscribe(&self, project_id: i64) -> Result<mpsc::UnboundedReceiver<Value>, Error> {
        let conn = self.conn(project_id).map_err(internal)?;
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&conn.subscribers).push(tx);
        if conn.closed.load(Ordering::SeqCst) {
            // The reader may have cleared the list before this push.
            lock(&conn.subscribers).clear();
            return Err(internal(format!(
                "the server at {} closed the connection",
                conn.url
            )));
        }
        Ok(rx)
    }

    /// `set run://ALIAS` with the prompt: a new run under that alias, or a
    /// new loop of it.
    pub async fn begin(&self, b: Begin) -> Result<Option<i64>, String> {
        if let Some(path) = b.question {
            return self
                .resolve(
                    b.project_id,
                    &b.alias,
                    &path,
                    Resolution::Accept,
                    Some(b.text),
                )
                .await
                .map(|()| None);
        }
        let mut attributes = json!({"mode": b.mode.as_str()});
        if !b.started {
            attributes["model"] = json!(b.model);
        }
        if b.yolo {
            attributes["yolo"] = json!(true);
        }
        let params = json!({
            "path": format!("run://{}", b.alias),
            "body": b.text,
            "attributes": attributes,
        });
        self.call(b.project_id, "set", params).await.map(|_| None)
    }

    /// `set {run, path, state}` on the proposal: resolved or cancelled, the
    /// answer as its body.
    pub async fn resolve(
        &self,
        project_id: i64,
        alias: &str,
        path: &str,
        action: Resolution,
        output: Option<String>,
    ) -> Result<(), String> {
        let state = match action {
            Resolution::Accept => "resolved",
            Resolution::Reject => "cancelled",
            Resolution::Error => "failed",
        };
        let mut params = json!({"run": alias, "path": path, "state": state});
        if let Some(body) = output {
            params["body"] = json!(body);
        }
        self.call(project_id, "set", params).await.map(|_| ())
    }

    pub async fn cancel(&self, project_id: i64, alias: &str, reason: &str) -> Result<(), String> {
        let params = json!({
            "path": format!("run://{alias}"),
            "state": "cancelled",
            "outcome": reason,
        });
        self.call(project_id, "set", params).await.map(|_| ())
    }

    /// `set run://ALIAS {attributes: {yolo: true}}` without a body: the
    /// run's stored flags change for its next loops.
    pub async fn store_yolo(&self, project_id: i64, alias: &str) -> Result<(), String> {
        let params = json!({"path": format!("run://{alias}"), "attributes": {"yolo": true}});
        self.call(project_id, "set", params).await.map(|_| ())
    }

    pub async fn bodies(&self, project_id: i64, alias: &str, paths: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for path in paths {
            let rows = self
                .entries(project_id, alias, json!({"pattern": path.clone()}))
                .await
                .unwrap_or_default();
            let body = rows
                .iter()
                .find(|r| r.get("path").and_then(Value::as_str) == Some(path.as_str()))
                .and_then(|r| r.get("body").and_then(Value::as_str))
                .unwrap_or_default();
            out.push(body.to_string());
        }
        out
    }

    pub async fn reasoning(&self, project_id: i64, alias: &str) -> Vec<TurnText> {
        self.get_run(project_id, alias)
            .await
            .map(|r| r.context.reasoning)
            .unwrap_or_default()
    }

    /// The client that accepted a command runs it (spec 03 §2): here, in
    /// the project root, its output sent as `stream` and its end as
    /// `stream/completed` or `stream/aborted`.
    pub fn run_accepted(
        &self,
        project_id: i64,
        alias: &str,
        path: &str,
        command: &str,
        root: &Path,
    ) {
        let conn = match self.conn(project_id) {
            Ok(c) => c,
            Err(e) => return tracing::warn!("{path} not run: {e}"),
        };
        // A `stream/cancel` (or the run's cancel) reaches whoever runs the
        // command as `stream/cancelled`, and a cancelled run as `run/state`
        // 499: either kills it now, not when its next chunk is refused or
        // its timeout fires. A run that ends otherwise leaves it running,
        // as the server's own commands are.
        let mut notes = match self.subscribe(project_id) {
            Ok(n) => n,
            Err(e) => return tracing::warn!("{path} not run: {e}"),
        };
        let (tx, mut events) = mpsc::channel(64);
        let process = crate::exec::spawn(
            ExecRequest::new(command.to_string(), root.to_path_buf()),
            self.limits.clone(),
            tx,
        );
        let (run, path) = (alias.to_string(), path.to_string());
        tokio::spawn(async move {
            // Held until the command ends: dropping it kills the group.
            let _process = process;
            loop {
                let event = tokio::select! {
                    event = events.recv() => match event {
                        Some(e) => e,
                        None => return,
                    },
                    note = notes.recv() => {
                        match note {
                            Some(n) if !stops_command(&n, &run, &path) => continue,
                            Some(_) => tracing::info!("{path}: cancelled; killing its command"),
                            None => tracing::warn!("{path}: the server went away; killing its command"),
                        }
                        return;
                    }
                };
                let (method, params) = match event {
                    ExecEvent::Chunk { channel, bytes } => (
                        "stream",
                        json!({
                            "run": run, "path": path, "channel": channel,
                            "chunk": String::from_utf8_lossy(&bytes),
                        }),
                    ),
                    ExecEvent::Truncated { .. } => continue,
                    ExecEvent::Finished(outcome) => {
                        let params = match &outcome {
                            ExecOutcome::Exited { code, .. } => (
                                "stream/completed",
                                json!({"run": run, "path": path, "exit_code": code}),
                            ),
                            other => (
                                "stream/aborted",
                                json!({
                                    "run": run, "path": path,
                                    "reason": crate::stream::describe(other),
                                }),
                            ),
                        };
                        if let Err(e) = conn.call(params.0, params.1).await {
                            tracing::warn!("{}: {e}", params.0);
                        }
                        return;
                    }
                };
                if let Err(e) = conn.call(method, params).await {
                    // The stream ended (a cancel): the command stops with it.
                    tracing::warn!("{method} {path}: {e}");
                    return;
                }
            }
        });
    }
}

/// Whether a notification cancels the command at `path` of `run`: its
/// `stream/cancelled`, or the run's `run/state` 499.
fn stops_command(note: &Value, run: &str, path: &str) -> bool {
    let field = |name: &str| note.pointer(&format!("/params/{name}"));
    let of_run = field("run").and_then(Value::as_str) == Some(run);
    match note.get("method").and_then(Value::as_str) {
        Some("stream/cancelled") => of_run && field("path").and_then(Value::as_str) == Some(path),
        Some("run/state") => of_run && field("status").and_then(Value::as_i64) == Some(499),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::stops_command;
    use serde_json::json;

    fn note(method: &str, params: serde_json::Value) -> serde_json::Value {
        json!({"jsonrpc": "2.0", "method": method, "params": params})
    }

    #[test]
    fn only_a_cancel_of_this_command_or_its_run_stops_it() {
        let path = "log://turn_1/sh/x";
        let cancelled =
            |run: &str, p: &str| note("stream/cancelled", json!({"run": run, "path": p}));
        let state =
            |run: &str, status: i64| note("run/state", json!({"run": run, "status": status}));
        assert!(stops_command(&cancelled("a_1", path), "a_1", path));
        assert!(!stops_command(
            &cancelled("a_1", "log://turn_1/sh/y"),
            "a_1",
            path
        ));
        assert!(!stops_command(&cancelled("b_1", path), "a_1", path));
        assert!(stops_command(&state("a_1", 499), "a_1", path));
        assert!(!stops_command(&state("a_1", 200), "a_1", path));
        assert!(!stops_command(&state("a_1", 102), "a_1", path));
        assert!(!stops_command(&state("b_1", 499), "a_1", path));
        let progress = note("run/progress", json!({"run": "a_1", "status": 499}));
        assert!(!stops_command(&progress, "a_1", path));
    }
}
