//! The load driver's in-process model: an OpenAI-compatible
//! `chat/completions` endpoint with no latency of its own (or a fixed
//! delay), answering each run by the marker in its prompt.
//!
//! A prompt `loadrun-ID-TURNS` makes every reply add one new ~550-character
//! known entry and a numbered `<update status="102">`; reply number TURNS
//! ends the run with status 200. Paths, bodies and update texts all carry
//! the turn number, so cycle and repeat detection never fire.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use serde_json::json;

/// Context length the fake reports; large enough that 1,000 turns of
/// 550-character entries never come near the budget.
pub const CONTEXT_LENGTH: u64 = 10_000_000;

#[derive(Default)]
struct State {
    /// Replies served so far, per run marker.
    turns: HashMap<u64, u64>,
    delay: Duration,
}

type Shared = Arc<Mutex<State>>;

pub struct Fake {
    pub addr: SocketAddr,
    state: Shared,
    handle: ServerHandle,
}

impl Fake {
    /// Starts the fake on 127.0.0.1:0 with one worker thread.
    pub fn start() -> std::io::Result<Fake> {
        let state: Shared = Arc::default();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 << 20))
                .route("/v1/chat/completions", web::post().to(completions))
                .route("/v1/models", web::get().to(models))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("fake bound to no address"))?;
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(Fake {
            addr,
            state,
            handle,
        })
    }

    /// Sets how long every later completion waits before answering.
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut st) = self.state.lock() {
            st.delay = delay;
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// `loadrun-ID-TURNS` somewhere in the request body. Searched in the raw
/// bytes: the fake shares the process with the server, and validating or
/// converting a whole packet every turn would be counted as server work.
fn marker(body: &[u8]) -> Option<(u64, u64)> {
    const MARK: &[u8] = b"loadrun-";
    let at = memchr::memmem::find(body, MARK)? + MARK.len();
    let digits = |from: usize| {
        let len = body[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let n = std::str::from_utf8(&body[from..from + len])
            .ok()?
            .parse()
            .ok()?;
        Some((n, from + len))
    };
    let (id, end) = digits(at)?;
    if body.get(end) != Some(&b'-') {
        return None;
    }
    let (turns, _) = digits(end + 1)?;
    Some((id, turns))
}

/// About 550 characters that differ from every other turn's.
fn note(id: u64, n: u64) -> String {
    let mut s = format!("Run {id}, turn {n}: observed fact {n} about the system under load.");
    let mut i = 0;
    while s.len() < 550 {
        s.push_str(&format!(" detail {n}.{i} holds"));
        i += 1;
    }
    s
}

fn reply(id: u64, n: u64, turns: u64) -> String {
    let set = format!("<set path=\"known://note_{n}\">{}</set>", note(id, n));
    if n >= turns {
        format!("{set}<update status=\"200\">finished after {n} turns</update>")
    } else {
        format!("{set}<update status=\"102\">step {n}</update>")
    }
}

async fn completions(body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let (content, delay) = {
        let Ok(mut st) = state.lock() else {
            return HttpResponse::InternalServerError().finish();
        };
        let delay = st.delay;
        let content = match marker(&body) {
            Some((id, turns)) => {
                let n = st.turns.entry(id).or_insert(0);
                *n += 1;
                reply(id, *n, turns)
            }
            None => "<update status=\"200\">no marker</update>".to_string(),
        };
        (content, delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    HttpResponse::Ok().json(json!({
        "id": "chatcmpl-load",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    }))
}

async fn models() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": [{
            "id": "fake-model",
            "object": "model",
            "context_length": CONTEXT_LENGTH,
            "meta": {"n_ctx_train": CONTEXT_LENGTH}
        }]
    }))
}
