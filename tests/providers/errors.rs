//! Error classes from real error bodies, retries, deadlines, malformed
//! replies and aborts.

use crate::fake::*;
use crate::{call, registry, OLLAMA_CHAT, OPENAI_CHAT, OPENROUTER_CHAT, XAI_RESPONSES};
use rummy::llm::{ErrorClass, LlmError};
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn context_exceeded_is_recognised_everywhere_and_never_retried() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let cases = [
        ("openai/m", OPENAI_CHAT, openai_context_exceeded(), "maximum context length is 128000"),
        ("openai/m", OPENAI_CHAT, llama_cpp_context_exceeded(), "exceeds the available context size"),
        ("openai/m", OPENAI_CHAT, vllm_context_exceeded(), "maximum context length is 4096"),
        ("openai/m", OPENAI_CHAT, nginx(413, "Request Entity Too Large"), "413"),
        (
            "ollama/m",
            OLLAMA_CHAT,
            ollama_error(500, "input length exceeds the context length"),
            "exceeds the context length",
        ),
        (
            "openrouter/v/m",
            OPENROUTER_CHAT,
            openrouter_error(400, "This endpoint's maximum context length is 200000 tokens. However, you requested about 250000 tokens."),
            "maximum context length is 200000",
        ),
        (
            "xai/m",
            XAI_RESPONSES,
            xai_error(400, "This model's maximum prompt length is 131072 but the request contains 140000 tokens."),
            "maximum prompt length",
        ),
    ];
    for (actual, path, reply, text) in cases {
        let before = fake.seen(path).len();
        fake.queue(path, [reply]);
        let (result, notices) = call(&reg, actual).await;
        let e = result.expect_err(actual);
        assert!(
            matches!(e, LlmError::ContextExceeded { .. }),
            "{actual}: {e}"
        );
        assert!(e.to_string().contains(text), "{actual}: {e}");
        assert!(notices.is_empty());
        assert_eq!(fake.seen(path).len(), before + 1, "{actual} was retried");
    }
    fake.stop().await;
}

#[actix_web::test]
async fn rate_limits_honour_retry_after_then_succeed() {
    let fake = FakeService::start().await;
    fake.queue(
        OPENAI_CHAT,
        [
            openai_rate_limited().header("retry-after", "1"),
            openai_rate_limited().header("retry-after-ms", "150"),
            Canned::json(200, openai_reply("after the wait")),
        ],
    );
    let started = Instant::now();
    let (result, notices) = call(&registry(&fake, &[]), "openai/m").await;
    assert_eq!(result.expect("completion").content, "after the wait");
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0].attempt, 1);
    assert_eq!(notices[0].class, ErrorClass::RateLimited);
    assert!(
        notices[0].error.contains("Rate limit reached"),
        "{}",
        notices[0].error
    );
    // Retry-After wins over the (millisecond) backoff.
    assert!(
        notices[0].delay >= Duration::from_secs(1),
        "{:?}",
        notices[0].delay
    );
    assert!(
        notices[1].delay >= Duration::from_millis(150),
        "{:?}",
        notices[1].delay
    );
    assert!(started.elapsed() >= Duration::from_millis(1150));
    assert_eq!(fake.seen(OPENAI_CHAT).len(), 3);
    fake.stop().await;
}

#[actix_web::test]
async fn a_retry_after_beyond_the_deadline_gives_up_without_waiting() {
    let fake = FakeService::start().await;
    fake.queue(
        OPENROUTER_CHAT,
        [
            openrouter_error(429, "Rate limit exceeded: free-models-per-day")
                .header("retry-after", "86400"),
        ],
    );
    let (result, notices) = call(&registry(&fake, &[]), "openrouter/v/m").await;
    let e = result.expect_err("gives up");
    assert!(
        matches!(e, LlmError::RetriesExhausted { attempts: 1, .. }),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::RateLimited);
    assert!(e.to_string().contains("free-models-per-day"), "{e}");
    assert!(notices.is_empty());
    fake.stop().await;
}

#[actix_web::test]
async fn warming_up_gateway_and_server_errors_are_retried_until_success() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let cases = [
        (
            "openai/m",
            OPENAI_CHAT,
            llama_cpp_loading(),
            ErrorClass::Unavailable,
            Canned::json(200, openai_reply("ok")),
        ),
        (
            "ollama/m",
            OLLAMA_CHAT,
            nginx(502, "Bad Gateway"),
            ErrorClass::Gateway,
            Canned::json(200, ollama_reply("ok", None)),
        ),
        (
            "xai/m",
            XAI_RESPONSES,
            nginx(504, "Gateway Time-out"),
            ErrorClass::Gateway,
            Canned::json(200, xai_reply("ok")),
        ),
        (
            "openrouter/v/m",
            OPENROUTER_CHAT,
            openrouter_error(500, "Internal Server Error"),
            ErrorClass::Server,
            Canned::json(200, openrouter_reply("ok")),
        ),
    ];
    for (actual, path, failure, class, success) in cases {
        fake.queue(path, [failure.clone(), failure, success]);
        let (result, notices) = call(&reg, actual).await;
        assert_eq!(
            result.unwrap_or_else(|e| panic!("{actual}: {e}")).content,
            "ok"
        );
        let seen: Vec<(u32, ErrorClass)> = notices.iter().map(|n| (n.attempt, n.class)).collect();
        assert_eq!(seen, vec![(1, class), (2, class)], "{actual}");
        assert!(
            notices.iter().all(|n| n.delay <= Duration::from_millis(20)),
            "{notices:?}"
        );
    }
    fake.stop().await;
}

#[actix_web::test]
async fn a_deadline_that_expires_ends_with_the_last_error() {
    let fake = FakeService::start().await;
    fake.always(OPENAI_CHAT, llama_cpp_loading());
    let reg = registry(&fake, &[("RUMMY_LLM_UNAVAILABLE_DEADLINE", "200")]);
    let (result, notices) = call(&reg, "openai/m").await;
    let e = result.expect_err("deadline");
    let LlmError::RetriesExhausted {
        attempts, ref last, ..
    } = e
    else {
        panic!("not exhausted: {e}");
    };
    assert!(matches!(**last, LlmError::Unavailable { .. }));
    assert!(attempts >= 3, "{attempts}");
    assert_eq!(attempts as usize, fake.seen(OPENAI_CHAT).len());
    assert_eq!(notices.len() + 1, attempts as usize);
    let text = e.to_string();
    assert!(
        text.contains("unavailable retry deadline") && text.contains("Loading model"),
        "{text}"
    );
    fake.stop().await;
}

#[actix_web::test]
async fn client_errors_fail_at_once_with_the_providers_message() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let cases = [
        (
            "openai/m",
            OPENAI_CHAT,
            openai_error(401, "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", json!("invalid_api_key")),
            "OpenAI-compatible API error: 401 - ",
        ),
        (
            "openai/m",
            OPENAI_CHAT,
            openai_error(400, "Invalid 'temperature': decimal above maximum value.", "invalid_request_error", json!("decimal_above_max_value")),
            "Invalid 'temperature'",
        ),
        ("ollama/m", OLLAMA_CHAT, ollama_error(404, "model \"m\" not found, try pulling it first"), "try pulling it first"),
        (
            "openrouter/v/m",
            OPENROUTER_CHAT,
            openrouter_error(401, "No auth credentials found"),
            "OpenRouter Authentication Error: 401 - ",
        ),
        (
            "openrouter/v/m",
            OPENROUTER_CHAT,
            openrouter_error(402, "Insufficient credits. Add more using https://openrouter.ai/credits"),
            "Insufficient credits",
        ),
        (
            "xai/m",
            XAI_RESPONSES,
            xai_error(400, "Incorrect API key provided: xa***st. You can obtain an API key from https://console.x.ai."),
            "Incorrect API key provided",
        ),
        ("xai/m", XAI_RESPONSES, xai_error(403, "forbidden"), "Please check your XAI_API_KEY."),
    ];
    for (actual, path, reply, text) in cases {
        let before = fake.seen(path).len();
        fake.queue(path, [reply]);
        let (result, notices) = call(&reg, actual).await;
        let e = result.expect_err(actual);
        assert!(matches!(e, LlmError::Client { .. }), "{actual}: {e:?}");
        assert!(e.to_string().contains(text), "{actual}: {e}");
        assert!(notices.is_empty());
        assert_eq!(fake.seen(path).len(), before + 1, "{actual} was retried");
    }
    fake.stop().await;
}

#[actix_web::test]
async fn malformed_bodies_are_clear_errors() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let cases = [
        (
            "openai/m",
            OPENAI_CHAT,
            Canned::raw(200, "{\"id\": \"chatcmpl-1\", \"choices\": ["),
        ),
        (
            "ollama/m",
            OLLAMA_CHAT,
            Canned::raw(200, "<html>proxy login</html>"),
        ),
        (
            "openrouter/v/m",
            OPENROUTER_CHAT,
            Canned::json(200, json!({"id": "gen-1", "choices": []})),
        ),
        (
            "xai/m",
            XAI_RESPONSES,
            Canned::json(200, json!({"id": "resp_1", "object": "response"})),
        ),
    ];
    for (actual, path, reply) in cases {
        fake.queue(path, [reply]);
        let (result, notices) = call(&reg, actual).await;
        let e = result.expect_err(actual);
        assert!(matches!(e, LlmError::Malformed { .. }), "{actual}: {e:?}");
        assert!(e.to_string().contains("malformed reply"), "{actual}: {e}");
        assert!(notices.is_empty());
        assert_eq!(fake.seen(path).len(), 1);
    }
    fake.stop().await;
}

#[actix_web::test]
async fn network_errors_and_timeouts_are_retried_within_their_deadline() {
    // A port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let fake = FakeService::start().await;
    let closed = format!("http://127.0.0.1:{port}");
    let reg = registry(
        &fake,
        &[
            ("OPENAI_BASE_URL", &closed),
            ("RUMMY_LLM_NETWORK_DEADLINE", "100"),
        ],
    );
    let (result, notices) = call(&reg, "openai/m").await;
    let e = result.expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Network);
    assert!(matches!(e, LlmError::RetriesExhausted { .. }), "{e}");
    assert!(!notices.is_empty());
    assert!(e.to_string().contains("request failed"), "{e}");

    // A reply slower than RUMMY_FETCH_TIMEOUT is a timeout; with the
    // deadline off it is not retried.
    fake.always(
        OLLAMA_CHAT,
        Canned::json(200, ollama_reply("late", None)).after(Duration::from_secs(5)),
    );
    let reg = registry(
        &fake,
        &[
            ("RUMMY_FETCH_TIMEOUT", "100"),
            ("RUMMY_LLM_NETWORK_DEADLINE", "0"),
        ],
    );
    let (result, notices) = call(&reg, "ollama/m").await;
    let e = result.expect_err("timeout");
    assert!(matches!(e, LlmError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("RUMMY_FETCH_TIMEOUT"), "{e}");
    assert!(notices.is_empty());
    fake.stop().await;
}

#[actix_web::test]
async fn an_abort_drops_a_slow_call_and_a_retry_wait_at_once() {
    let fake = FakeService::start().await;
    fake.always(
        OPENAI_CHAT,
        Canned::json(200, openai_reply("too late")).after(Duration::from_secs(60)),
    );
    let reg = registry(&fake, &[]);
    let started = Instant::now();
    let outcome = tokio::select! {
        r = call(&reg, "openai/m") => Some(r),
        () = fake.wait_for(OPENAI_CHAT, 1, Duration::from_secs(10)) => None,
    };
    assert!(outcome.is_none(), "the slow call finished: {outcome:?}");
    // Dropping the call future closed its connection: the fake saw the client go away while
    // its 60 s reply was still pending.
    fake.wait_for_drop(OPENAI_CHAT, 1, Duration::from_secs(10))
        .await;
    assert!(started.elapsed() < Duration::from_secs(30));

    // Aborting while waiting between retries ends the wait too.
    fake.queue(OLLAMA_CHAT, [llama_cpp_loading()]);
    let reg = registry(
        &fake,
        &[
            ("RUMMY_LLM_BACKOFF", "60000"),
            ("RUMMY_LLM_MAX_BACKOFF", "60000"),
        ],
    );
    let started = Instant::now();
    let outcome = tokio::select! {
        r = call(&reg, "ollama/m") => Some(r),
        () = async {
            fake.wait_for(OLLAMA_CHAT, 1, Duration::from_secs(10)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        } => None,
    };
    assert!(outcome.is_none(), "the retry wait finished: {outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(fake.seen(OLLAMA_CHAT).len(), 1);
    fake.stop().await;
}
