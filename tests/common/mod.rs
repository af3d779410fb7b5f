//! Shared integration-test harness: a fake OpenAI-compatible provider, a real
//! WebSocket JSON-RPC client, and the settings for a throwaway test server.
//!
//! The fake replaces only the remote model; everything it answers uses the
//! provider's real wire format so the server's own HTTP client is exercised.
#![allow(dead_code)]

mod schema_check;
// Not every test binary checks frames by hand.
#[allow(unused_imports)]
pub use schema_check::{protocol, ProtocolSchema};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{
    dev::ServerHandle, http::StatusCode, web, App, HttpRequest, HttpResponse, HttpServer,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

/// `usage.prompt_tokens` of every scripted completion.
pub const FAKE_PROMPT_TOKENS: u64 = 100;
/// `usage.completion_tokens` of every scripted completion.
pub const FAKE_COMPLETION_TOKENS: u64 = 10;
/// Context length the fake reports on `GET /v1/models`.
pub const FAKE_CONTEXT_LENGTH: u64 = 32768;
/// Reply given once the script is exhausted.
pub const DEFAULT_REPLY: &str = r#"<update status="200">done</update>"#;
/// How long `WsClient::call` and `WsClient::send_raw` wait for their answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One scripted provider reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with an OpenAI chat.completions body whose `choices[0].message.content` is this text.
    Content(String),
    /// Same, after sleeping this long first (for cancellation and disconnect tests).
    Delayed(Duration, String),
    /// An HTTP error with this status and an OpenAI-style `{"error":{"message","type"}}` body.
    Error(u16, String),
}

/// State shared between the test and the fake's worker thread.
#[derive(Default)]
struct ProviderState {
    replies: VecDeque<Reply>,
    requests: Vec<Value>,
    calls: Vec<String>,
    completions_served: u64,
    /// Completions abandoned by the client before their (delayed) reply was sent.
    dropped: usize,
}

type Shared = Arc<Mutex<ProviderState>>;

fn lock(state: &Shared) -> MutexGuard<'_, ProviderState> {
    state
        .lock()
        .expect("fake provider state mutex poisoned (a handler panicked)")
}

/// An in-process OpenAI-compatible chat-completions server replaying scripted replies.
pub struct FakeProvider {
    addr: SocketAddr,
    state: Shared,
    handle: ServerHandle,
}

impl FakeProvider {
    /// Starts the fake on 127.0.0.1 with an ephemeral port (one worker).
    ///
    /// `POST /v1/chat/completions` pops the next [`Reply`] (the exhausted script
    /// answers [`DEFAULT_REPLY`]); `GET /v1/models` lists `fake-model`;
    /// `GET /props` is 404. Every POST body is recorded.
    pub async fn start(replies: Vec<Reply>) -> FakeProvider {
        let state: Shared = Arc::new(Mutex::new(ProviderState {
            replies: replies.into(),
            ..ProviderState::default()
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/chat/completions", web::post().to(chat_completions))
                .route("/v1/models", web::get().to(list_models))
                .default_service(web::to(not_found))
        })
        .workers(1)
        // A client that closes its connection mid-request ends the handler at once (its
        // future is dropped), which is how abandoned calls are seen; see `Pending`.
        .h1_allow_half_closed(false)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .expect("fake provider: cannot bind 127.0.0.1:0");
        let addr = *server
            .addrs()
            .first()
            .expect("fake provider: bound to no address");
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeProvider {
            addr,
            state,
            handle,
        }
    }

    /// Base URL for `OPENAI_BASE_URL`, e.g. `http://127.0.0.1:PORT` (no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The chat-completion request bodies received so far, oldest first.
    /// A body that is not JSON is recorded as a JSON string of its raw text.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state).requests.clone()
    }

    /// Every HTTP request received so far as `"METHOD /path"`, oldest first
    /// (includes `/props` and `/v1/models` probes).
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    /// How many scripted replies have not been used yet.
    pub fn remaining_replies(&self) -> usize {
        lock(&self.state).replies.len()
    }

    /// Appends more scripted replies after the ones still queued.
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state).replies.extend(replies);
    }

    /// How many chat completions the client abandoned (closed the connection) before their
    /// reply was sent.
    pub fn dropped_requests(&self) -> usize {
        lock(&self.state).dropped
    }

    /// Waits (up to `limit`) until `n` completions have been abandoned by the client; fails
    /// the test otherwise (the call was not dropped, it is still waiting for its reply).
    pub async fn wait_for_drop(&self, n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.dropped_requests() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} completion(s) dropped by the client, expected {n}",
                self.dropped_requests()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the fake's HTTP server (in-flight requests are dropped).
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Lives in a delayed completion's handler until its reply is built. actix-web drops the
/// handler's future when the client closes the connection, so a guard dropped before
/// [`Pending::answered`] means the client abandoned the request.
struct Pending {
    state: Shared,
    answered: bool,
}

impl Pending {
    fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered {
            if let Ok(mut st) = self.state.lock() {
                st.dropped += 1;
            }
        }
    }
}

fn record_call(state: &Shared, req: &HttpRequest) {
    lock(state)
        .calls
        .push(format!("{} {}", req.method(), req.path()));
}

async fn chat_completions(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Shared>,
) -> HttpResponse {
    record_call(&state, &req);
    let parsed = serde_json::from_slice::<Value>(&body);
    let (reply, serial) = {
        let mut st = lock(&state);
        st.requests.push(match &parsed {
            Ok(v) => v.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
        });
        if let Err(e) = &parsed {
            return openai_error(400, &format!("request body is not JSON: {e}"));
        }
        st.completions_served += 1;
        let reply = st
            .replies
            .pop_front()
            .unwrap_or_else(|| Reply::Content(DEFAULT_REPLY.to_string()));
        (reply, st.completions_served)
    };
    let model = parsed
        .ok()
        .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "fake-model".to_string());
    match reply {
        Reply::Content(text) => completion(&model, serial, &text),
        Reply::Delayed(delay, text) => {
            let pending = Pending {
                state: Shared::clone(&state),
                answered: false,
            };
            actix_web::rt::time::sleep(delay).await;
            pending.answered();
            completion(&model, serial, &text)
        }
        Reply::Error(status, message) => openai_error(status, &message),
    }
}

fn completion(model: &str, serial: u64, text: &str) -> HttpResponse {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    HttpResponse::Ok().json(json!({
        "id": format!("chatcmpl-fake-{serial}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": FAKE_PROMPT_TOKENS,
            "completion_tokens": FAKE_COMPLETION_TOKENS,
            "total_tokens": FAKE_PROMPT_TOKENS + FAKE_COMPLETION_TOKENS
        }
    }))
}

fn openai_error(status: u16, message: &str) -> HttpResponse {
    let code = StatusCode::from_u16(status)
        .unwrap_or_else(|_| panic!("Reply::Error: {status} is not a valid HTTP status"));
    let kind = match status {
        401 | 403 => "authentication_error",
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    HttpResponse::build(code).json(json!({
        "error": {"message": message, "type": kind, "param": null, "code": null}
    }))
}

async fn list_models(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    record_call(&state, &req);
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": [{
            "id": "fake-model",
            "object": "model",
            "context_length": FAKE_CONTEXT_LENGTH,
            "meta": {"n_ctx_train": FAKE_CONTEXT_LENGTH}
        }]
    }))
}

async fn not_found(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    record_call(&state, &req);
    HttpResponse::NotFound().json(json!({
        "error": {"message": format!("no route for {} {}", req.method(), req.path()), "type": "not_found"}
    }))
}

/// A real WebSocket JSON-RPC client that buffers notifications and stray replies.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Frames without `id` that have `method`, in arrival order, not yet consumed.
    notifications: VecDeque<Value>,
    /// Frames with an `id` that no caller has claimed yet, in arrival order.
    responses: VecDeque<Value>,
}

impl WsClient {
    /// Connects to `ws://{addr}/`.
    pub async fn connect(addr: SocketAddr) -> WsClient {
        let url = format!("ws://{addr}/");
        let ws = match tokio::time::timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(&url))
            .await
        {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(e)) => panic!("WsClient: cannot connect to {url}: {e}"),
            Err(_) => panic!("WsClient: connecting to {url} timed out"),
        };
        WsClient {
            ws,
            next_id: 1,
            notifications: VecDeque::new(),
            responses: VecDeque::new(),
        }
    }

    /// Sends `{"jsonrpc":"2.0","id":N,"method","params"}` with a fresh numeric id and
    /// waits up to [`CALL_TIMEOUT`] for the frame with that id.
    /// Returns `Ok(result)` or `Err(error object)`.
    ///
    /// Panics unless `params` fit the method's params schema and the result fits its
    /// result schema (see [`protocol`]). Tests that send bad params on purpose use
    /// [`WsClient::call_unchecked`].
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        if let Err(e) = protocol().check_params(method, &params) {
            panic!("WsClient: request breaks the protocol schema: {e}");
        }
        self.call_unchecked(method, params).await
    }

    /// Like [`WsClient::call`], without checking the params: for tests that send
    /// unknown methods or ill-typed params on purpose. What the server answers is
    /// still checked.
    pub async fn call_unchecked(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_text(request.to_string()).await;
        let frame = self
            .wait_response(
                CALL_TIMEOUT,
                &format!("the reply to {method} (id {id})"),
                |f| f["id"] == json!(id),
            )
            .await;
        if let Some(error) = frame.get("error") {
            return Err(error.clone());
        }
        match frame.get("result") {
            Some(result) => {
                if let Err(e) = protocol().check_result(method, result) {
                    panic!("WsClient: the server's reply breaks the protocol schema: {e}");
                }
                Ok(result.clone())
            }
            None => panic!(
                "WsClient: reply to {method} (id {id}) has neither result nor error: {frame}"
            ),
        }
    }

    /// Sends a raw text frame and returns the next not-yet-claimed frame that has an
    /// `"id"` key (result or error), buffering notifications meanwhile. The frame sent
    /// is not checked; the envelope and any error object of the reply are.
    pub async fn send_raw(&mut self, text: &str) -> Value {
        self.send_text(text.to_string()).await;
        self.wait_response(
            CALL_TIMEOUT,
            &format!("a reply to raw frame {text:?}"),
            |_| true,
        )
        .await
    }

    /// Returns the first buffered-or-incoming notification with this `method` for which
    /// `pred` holds, consuming it and all earlier notifications of that method.
    /// Panics after `timeout`.
    pub async fn wait_notification(
        &mut self,
        method: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            while scanned < self.notifications.len() {
                let n = &self.notifications[scanned];
                if n["method"] == method && pred(n) {
                    let found = self
                        .notifications
                        .remove(scanned)
                        .expect("index checked against len");
                    let mut kept = VecDeque::with_capacity(self.notifications.len());
                    for (i, other) in self.notifications.drain(..).enumerate() {
                        if i >= scanned || other["method"] != method {
                            kept.push_back(other);
                        }
                    }
                    self.notifications = kept;
                    return found;
                }
                scanned += 1;
            }
            let frame = match tokio::time::timeout_at(deadline, self.next_frame()).await {
                Ok(frame) => frame,
                Err(_) => {
                    let seen: Vec<String> =
                        self.notifications.iter().map(|n| n.to_string()).collect();
                    panic!(
                        "WsClient: no {method} notification matching the predicate within {timeout:?}; \
                         buffered notifications: [{}]",
                        seen.join(", ")
                    );
                }
            };
            self.file(frame);
        }
    }

    /// Reads every frame that arrives within `settle` of the previous one, then returns
    /// (and removes from the buffer) all notifications not consumed so far, oldest first.
    pub async fn drain_notifications(&mut self, settle: Duration) -> Vec<Value> {
        while let Ok(frame) = tokio::time::timeout(settle, self.next_frame()).await {
            self.file(frame);
        }
        self.notifications.drain(..).collect()
    }

    /// Notifications buffered so far, without reading or consuming anything.
    pub fn buffered_notifications(&self) -> Vec<Value> {
        self.notifications.iter().cloned().collect()
    }

    /// Sends a close frame and waits briefly for the server's close.
    pub async fn close(mut self) {
        // The server may already be gone; a failed close is not a test failure.
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text))
            .await
            .unwrap_or_else(|e| panic!("WsClient: sending a frame failed: {e}"));
    }

    /// Waits for the first buffered-or-incoming reply frame matching `pred`.
    async fn wait_response(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            while scanned < self.responses.len() {
                if pred(&self.responses[scanned]) {
                    return self
                        .responses
                        .remove(scanned)
                        .expect("index checked against len");
                }
                scanned += 1;
            }
            match tokio::time::timeout_at(deadline, self.next_frame()).await {
                Ok(frame) => self.file(frame),
                Err(_) => panic!(
                    "WsClient: timed out after {timeout:?} waiting for {what}; \
                     unclaimed replies: {:?}; buffered notifications: {:?}",
                    self.responses, self.notifications
                ),
            }
        }
    }

    /// Checks a frame against the protocol schema and sorts it into the reply or
    /// notification buffer.
    fn file(&mut self, frame: Value) {
        if let Err(e) = protocol().check_frame(&frame) {
            panic!("WsClient: the server sent a frame that breaks the protocol schema: {e}");
        }
        if frame.get("id").is_some() {
            self.responses.push_back(frame);
        } else if frame.get("method").is_some() {
            self.notifications.push_back(frame);
        } else {
            panic!("WsClient: frame is neither a reply nor a notification: {frame}");
        }
    }

    /// Reads the next JSON text frame, skipping control frames.
    async fn next_frame(&mut self) -> Value {
        loop {
            let msg = match self.ws.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => panic!("WsClient: reading from the server failed: {e}"),
                None => panic!("WsClient: the server closed the connection"),
            };
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!("WsClient: server sent a non-JSON text frame ({e}): {text}")
                    })
                }
                Message::Binary(bytes) => {
                    panic!(
                        "WsClient: server sent a binary frame of {} bytes",
                        bytes.len()
                    )
                }
                Message::Close(reason) => {
                    panic!("WsClient: the server closed the connection: {reason:?}")
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }
}

/// Settings for a test server rooted at `home` (a fresh temp dir): the DB file inside it,
/// an ephemeral port, the fake provider as `openai`, and the model alias `fake`.
/// Turn them into a config with `rummy::config::Config::from_vars(vars)`.
pub fn test_vars(home: &Path, provider_base_url: &str) -> Vec<(String, String)> {
    [
        ("RUMMY_HOME", home.to_string_lossy().into_owned()),
        (
            "RUMMY_DB_PATH",
            home.join("rummy.db").to_string_lossy().into_owned(),
        ),
        ("PORT", "0".to_string()),
        ("OPENAI_BASE_URL", provider_base_url.to_string()),
        ("RUMMY_MODEL_fake", "openai/fake-model".to_string()),
        ("RUMMY_FETCH_TIMEOUT", "30000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A real rummy server on an ephemeral port with a temp SQLite file,
/// talking to a fake OpenAI-compatible provider.
pub struct TestServer {
    pub home: tempfile::TempDir,
    pub provider: FakeProvider,
    pub server: rummy::ServerHandle,
}

/// Starts a fake provider with these replies and a server that uses it.
pub async fn start_server(replies: Vec<Reply>) -> TestServer {
    let home = tempfile::tempdir().expect("temp dir");
    let provider = FakeProvider::start(replies).await;
    let config = rummy::Config::from_vars(test_vars(home.path(), &provider.base_url()))
        .expect("test config is valid");
    let server = rummy::Server::start(config, rummy::StartOptions::default())
        .await
        .expect("server starts");
    TestServer {
        home,
        provider,
        server,
    }
}

/// A client that has said `rummy/hello` for a project.
pub async fn hello_client(addr: SocketAddr, project: &str, root: &str) -> WsClient {
    let mut c = WsClient::connect(addr).await;
    c.call(
        "rummy/hello",
        serde_json::json!({"name": project, "projectRoot": root}),
    )
    .await
    .expect("hello succeeds");
    c
}

/// An existing, empty directory to name as `projectRoot` (hello refuses
/// roots that do not exist), under cargo's per-target scratch directory.
pub fn project_dir(name: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("projects")
        .join(name);
    std::fs::create_dir_all(&dir).expect("project dir");
    dir.to_string_lossy().into_owned()
}
