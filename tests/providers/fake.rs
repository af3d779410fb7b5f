//! A scripted in-process HTTP server standing in for the four services,
//! and builders for each service's real reply and error bodies.
//!
//! Every request is recorded; replies are queued per path, and a path with
//! no queued reply answers its `always` reply, or 404. A request whose client
//! went away before its (delayed) reply was sent is recorded as dropped, so
//! cancellation tests can show the call was really abandoned.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{
    dev::ServerHandle, http::StatusCode, web, App, HttpRequest, HttpResponse, HttpServer,
};
use serde_json::{json, Value};

/// One canned HTTP reply.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn json(status: u16, body: Value) -> Canned {
        Canned::raw(status, &body.to_string())
    }

    pub fn raw(status: u16, body: &str) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Canned {
        self.delay = delay;
        self
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    /// The JSON body, or the raw text as a JSON string, or null when empty.
    pub body: Value,
}

#[derive(Default)]
struct State {
    queued: HashMap<String, VecDeque<Canned>>,
    always: HashMap<String, Canned>,
    seen: Vec<Seen>,
    /// Paths of requests abandoned by their client before the reply was sent.
    dropped: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().expect("fake service state poisoned")
}

pub struct FakeService {
    addr: SocketAddr,
    state: Shared,
    handle: ServerHandle,
}

impl FakeService {
    pub async fn start() -> FakeService {
        let state: Shared = Arc::default();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(serve))
        })
        .workers(1)
        // A client that closes its connection mid-request ends the handler at once (its
        // future is dropped), which is how abandoned calls are seen; see `Pending`.
        .h1_allow_half_closed(false)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .expect("fake service binds");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeService {
            addr,
            state,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues replies for a path, answered in order.
    pub fn queue(&self, path: &str, replies: impl IntoIterator<Item = Canned>) {
        lock(&self.state)
            .queued
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    /// The reply for a path once its queue is empty.
    pub fn always(&self, path: &str, reply: Canned) {
        lock(&self.state).always.insert(path.to_string(), reply);
    }

    /// Requests received on a path, oldest first.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        lock(&self.state)
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// Waits (up to `limit`) until a path has received `n` requests.
    pub async fn wait_for(&self, path: &str, n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.seen(path).len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} got {} request(s), expected {n}",
                self.seen(path).len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many requests on a path the client abandoned before their reply was sent.
    pub fn dropped(&self, path: &str) -> usize {
        lock(&self.state)
            .dropped
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// Waits (up to `limit`) until `n` requests on a path have been abandoned by the client;
    /// fails the test otherwise (the call was not dropped, it is still waiting for its reply).
    pub async fn wait_for_drop(&self, path: &str, n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.dropped(path) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: {} request(s) dropped by the client, expected {n}",
                self.dropped(path)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Lives in the handler while its reply is pending. actix-web drops the handler's future when
/// the client closes the connection, so a guard dropped before [`Pending::answered`] means
/// the client abandoned the request.
struct Pending {
    state: Shared,
    path: String,
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
                st.dropped.push(std::mem::take(&mut self.path));
            }
        }
    }
}

async fn serve(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let path = req.path().to_string();
    let parsed = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let reply = {
        let mut st = lock(&state);
        st.seen.push(Seen {
            method: req.method().to_string(),
            path: path.clone(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: parsed,
        });
        let next = st.queued.get_mut(&path).and_then(VecDeque::pop_front);
        next.or_else(|| st.always.get(&path).cloned())
    };
    let Some(reply) = reply else {
        return HttpResponse::NotFound().json(json!({"error": format!("no route {path}")}));
    };
    if !reply.delay.is_zero() {
        let pending = Pending {
            state: Shared::clone(&state),
            path: path.clone(),
            answered: false,
        };
        actix_web::rt::time::sleep(reply.delay).await;
        pending.answered();
    }
    let mut response = HttpResponse::build(StatusCode::from_u16(reply.status).expect("status"));
    let is_json = serde_json::from_str::<Value>(&reply.body).is_ok();
    response.content_type(if is_json {
        "application/json"
    } else {
        "text/html"
    });
    for (k, v) in &reply.headers {
        response.insert_header((k.as_str(), v.as_str()));
    }
    response.body(reply.body)
}

// --- OpenAI-compatible (OpenAI, llama.cpp, vLLM) ----------------------------

pub fn openai_reply(content: &str) -> Value {
    json!({
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1_741_569_952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035"
    })
}

pub fn openai_error(status: u16, message: &str, kind: &str, code: Value) -> Canned {
    Canned::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

pub fn openai_context_exceeded() -> Canned {
    openai_error(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        json!("context_length_exceeded"),
    )
}

pub fn openai_rate_limited() -> Canned {
    openai_error(
        429,
        "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 2s.",
        "tokens",
        json!("rate_limit_exceeded"),
    )
}

pub fn llama_cpp_loading() -> Canned {
    Canned::json(
        503,
        json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
    )
}

pub fn llama_cpp_context_exceeded() -> Canned {
    Canned::json(
        400,
        json!({"error": {"code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error", "n_prompt_tokens": 5120, "n_ctx": 4096}}),
    )
}

pub fn vllm_context_exceeded() -> Canned {
    Canned::json(
        400,
        json!({"object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            "type": "BadRequestError", "param": null, "code": 400}),
    )
}

pub fn nginx(status: u16, reason: &str) -> Canned {
    Canned::raw(
        status,
        &format!(
            "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
        ),
    )
}

// --- Ollama (native API) ----------------------------------------------------

pub fn ollama_reply(content: &str, thinking: Option<&str>) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if let Some(t) = thinking {
        message["thinking"] = json!(t);
    }
    json!({
        "model": "qwen3:8b",
        "created_at": "2025-06-01T12:00:00.000000Z",
        "message": message,
        "done_reason": "stop",
        "done": true,
        "total_duration": 4_883_583_458_u64,
        "load_duration": 1_334_875,
        "prompt_eval_count": 812,
        "prompt_eval_duration": 342_546_000,
        "eval_count": 33,
        "eval_duration": 4_535_599_000_u64
    })
}

pub fn ollama_error(status: u16, message: &str) -> Canned {
    Canned::json(status, json!({"error": message}))
}

pub fn ollama_show(context_length: i64, num_ctx: Option<i64>) -> Canned {
    let parameters = match num_ctx {
        Some(n) => format!(
            "stop                           \"<|im_start|>\"\nnum_ctx                        {n}"
        ),
        None => "stop                           \"<|im_start|>\"".to_string(),
    };
    Canned::json(
        200,
        json!({
            "license": "Apache License 2.0",
            "modelfile": "# Modelfile generated by \"ollama show\"\nFROM qwen3:8b\n",
            "parameters": parameters,
            "template": "{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": "qwen3",
                "families": ["qwen3"], "parameter_size": "8.2B", "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "qwen3", "general.parameter_count": 8_190_735_360_u64,
                "qwen3.block_count": 36, "qwen3.context_length": context_length,
                "qwen3.embedding_length": 4096},
            "capabilities": ["completion", "tools", "thinking"],
            "modified_at": "2025-06-01T12:00:00.000000Z"
        }),
    )
}

// --- OpenRouter -------------------------------------------------------------

pub fn openrouter_reply(content: &str) -> Value {
    json!({
        "id": "gen-1748000000-abcdef",
        "provider": "Anthropic",
        "model": "anthropic/claude-sonnet-4",
        "object": "chat.completion",
        "created": 1_748_000_000,
        "choices": [{
            "logprobs": null,
            "finish_reason": "stop",
            "native_finish_reason": "end_turn",
            "index": 0,
            "message": {
                "role": "assistant", "content": content, "refusal": null,
                "reasoning": "Weigh the request.",
                "reasoning_details": [{"type": "reasoning.text", "text": "Weigh the request.", "format": "anthropic-claude-v1"},
                                       {"type": "reasoning.text", "text": "Then answer.", "format": "anthropic-claude-v1"}]
            }
        }],
        "usage": {
            "prompt_tokens": 2000, "completion_tokens": 80, "total_tokens": 2080,
            "cost": 0.0072,
            "prompt_tokens_details": {"cached_tokens": 1500},
            "completion_tokens_details": {"reasoning_tokens": 30}
        }
    })
}

pub fn openrouter_error(status: u16, message: &str) -> Canned {
    Canned::json(
        status,
        json!({"error": {"code": status, "message": message, "metadata": {"provider_name": null}}}),
    )
}

// --- xAI (responses API) ----------------------------------------------------

pub fn xai_reply(content: &str) -> Value {
    json!({
        "id": "resp_4c3a2b1d",
        "object": "response",
        "created_at": 1_750_000_000,
        "model": "grok-4-0709",
        "status": "completed",
        "output": [
            {"id": "rs_4c3a2b1d", "type": "reasoning", "status": "completed",
             "summary": [{"type": "summary_text", "text": "The user wants an update."}]},
            {"id": "msg_4c3a2b1d", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": content, "logprobs": null, "annotations": []}]}
        ],
        "usage": {
            "input_tokens": 3000, "input_tokens_details": {"cached_tokens": 2500},
            "output_tokens": 120, "output_tokens_details": {"reasoning_tokens": 90},
            "total_tokens": 3120, "num_sources_used": 0,
            "cost_in_usd_ticks": 123_000_000
        },
        "temperature": 0.5,
        "store": true
    })
}

pub fn xai_error(status: u16, message: &str) -> Canned {
    Canned::json(
        status,
        json!({"code": "Client specified an invalid argument", "error": message}),
    )
}
