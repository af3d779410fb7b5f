//! Each provider's request and reply on its service's real wire format,
//! and context-window discovery.

use crate::fake::*;
use crate::{call, registry, OLLAMA_CHAT, OPENAI_CHAT, OPENROUTER_CHAT, XAI_RESPONSES};
use serde_json::json;

#[actix_web::test]
async fn openai_compatible_request_and_reply() {
    let fake = FakeService::start().await;
    let mut reply = openai_reply("<update status=\"200\">ok</update>");
    reply["choices"][0]["message"]["reasoning_content"] = json!("Think first.");
    fake.queue(OPENAI_CHAT, [Canned::json(200, reply)]);
    let (result, notices) = call(&registry(&fake, &[]), "openai/gpt-4o").await;
    let c = result.expect("completion");
    assert!(notices.is_empty());
    assert_eq!(c.content, "<update status=\"200\">ok</update>");
    assert_eq!(c.reasoning.as_deref(), Some("Think first."));
    assert_eq!(c.model.as_deref(), Some("gpt-4o-2024-08-06"));
    let u = &c.usage;
    assert_eq!(
        (
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.reasoning_tokens,
            u.total_tokens
        ),
        (1117, 1024, 46, 12, 1163)
    );
    let seen = fake.seen(OPENAI_CHAT);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let body = &seen[0].body;
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["think"], true);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are a test."})
    );
    assert_eq!(body["messages"][1]["role"], "user");

    // OPENAI_THINK=false leaves the field out (api.openai.com rejects it).
    fake.queue(OPENAI_CHAT, [Canned::json(200, openai_reply("x"))]);
    let (result, _) = call(
        &registry(&fake, &[("OPENAI_THINK", "false")]),
        "openai/gpt-4o",
    )
    .await;
    result.expect("completion");
    assert!(fake.seen(OPENAI_CHAT)[1].body.get("think").is_none());
    fake.stop().await;
}

#[actix_web::test]
async fn openai_compatible_context_discovery() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let (provider, model) = reg.resolve("openai/qwen3").unwrap();
    // llama.cpp: the loaded window at /props.
    fake.queue(
        "/props",
        [Canned::json(
            200,
            json!({"default_generation_settings": {"n_ctx": 16384}, "total_slots": 1}),
        )],
    );
    assert_eq!(
        reg.context_size(provider.as_ref(), &model).await.unwrap(),
        Some(16384)
    );
    // vLLM: no /props; /v1/models has max_model_len for the served model.
    fake.queue(
        "/v1/models",
        [Canned::json(
            200,
            json!({"object": "list", "data": [
                {"id": "other", "object": "model", "max_model_len": 4096},
                {"id": "qwen3", "object": "model", "owned_by": "vllm", "max_model_len": 32768}
            ]}),
        )],
    );
    assert_eq!(
        reg.context_size(provider.as_ref(), &model).await.unwrap(),
        Some(32768)
    );
    // OpenAI itself lists models without a window: unknown, not an error.
    fake.queue(
        "/v1/models",
        [Canned::json(200, json!({"object": "list", "data": [{"id": "qwen3", "object": "model", "owned_by": "system"}]}))],
    );
    assert_eq!(
        reg.context_size(provider.as_ref(), &model).await.unwrap(),
        None
    );
    // No /v1/models at all: a clear error naming the server.
    let e = reg
        .context_size(provider.as_ref(), &model)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Is the server running at"), "{e}");
    fake.stop().await;
}

#[actix_web::test]
async fn ollama_native_chat_request_and_reply() {
    let fake = FakeService::start().await;
    fake.queue(
        OLLAMA_CHAT,
        [Canned::json(
            200,
            ollama_reply("<update status=\"200\">ok</update>", Some("Let me see.")),
        )],
    );
    let (result, _) = call(&registry(&fake, &[]), "ollama/qwen3:8b").await;
    let c = result.expect("completion");
    assert_eq!(c.content, "<update status=\"200\">ok</update>");
    assert_eq!(c.reasoning.as_deref(), Some("Let me see."));
    assert_eq!(c.model.as_deref(), Some("qwen3:8b"));
    let u = &c.usage;
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (812, 33, 845)
    );
    let body = &fake.seen(OLLAMA_CHAT)[0].body;
    assert_eq!(body["model"], "qwen3:8b");
    assert_eq!(body["stream"], false);
    assert_eq!(body["think"], true);
    assert_eq!(
        body["options"],
        json!({"temperature": 0.5, "num_ctx": 8192})
    );
    assert_eq!(body["messages"][1]["content"], "<prompt>hi</prompt>");
    fake.stop().await;
}

#[actix_web::test]
async fn ollama_models_that_do_not_think_are_asked_without_think() {
    let fake = FakeService::start().await;
    fake.queue(
        OLLAMA_CHAT,
        [
            ollama_error(400, "\"gemma3:4b\" does not support thinking"),
            Canned::json(200, ollama_reply("a", None)),
            Canned::json(200, ollama_reply("b", None)),
        ],
    );
    let reg = registry(&fake, &[]);
    let (first, notices) = call(&reg, "ollama/gemma3:4b").await;
    assert_eq!(first.expect("completion").content, "a");
    assert!(notices.is_empty(), "not a retry: {notices:?}");
    let (second, _) = call(&reg, "ollama/gemma3:4b").await;
    assert_eq!(second.expect("completion").content, "b");
    let thinks: Vec<bool> = fake
        .seen(OLLAMA_CHAT)
        .iter()
        .map(|s| s.body.get("think").is_some())
        .collect();
    // Refused once, then remembered.
    assert_eq!(thinks, vec![true, false, false]);
    fake.stop().await;
}

#[actix_web::test]
async fn ollama_context_discovery() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let (provider, model) = reg.resolve("ollama/qwen3:8b").unwrap();
    fake.queue(
        "/api/show",
        [ollama_show(40960, None), ollama_show(40960, Some(8192))],
    );
    assert_eq!(
        reg.context_size(provider.as_ref(), &model).await.unwrap(),
        Some(40960)
    );
    // The operator's num_ctx is the window Ollama will really load.
    assert_eq!(
        reg.context_size(provider.as_ref(), &model).await.unwrap(),
        Some(8192)
    );
    assert_eq!(fake.seen("/api/show")[0].body, json!({"model": "qwen3:8b"}));
    fake.queue(
        "/api/show",
        [ollama_error(404, "model 'qwen3:8b' not found")],
    );
    let e = reg
        .context_size(provider.as_ref(), &model)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("model 'qwen3:8b' not found"), "{e}");
    assert!(e.to_string().contains("Is Ollama running at"), "{e}");
    fake.stop().await;
}

#[actix_web::test]
async fn openrouter_request_headers_reasoning_and_cost() {
    let fake = FakeService::start().await;
    fake.queue(
        OPENROUTER_CHAT,
        [Canned::json(200, openrouter_reply("done"))],
    );
    let (result, _) = call(
        &registry(&fake, &[]),
        "openrouter/anthropic/claude-sonnet-4",
    )
    .await;
    let c = result.expect("completion");
    assert_eq!(c.content, "done");
    assert_eq!(
        c.reasoning.as_deref(),
        Some("Weigh the request.\nThen answer.")
    );
    let u = &c.usage;
    assert_eq!(
        (
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.reasoning_tokens,
            u.total_tokens
        ),
        (2000, 1500, 80, 30, 2080)
    );
    assert_eq!(u.cost, 0.0072);
    let seen = &fake.seen(OPENROUTER_CHAT)[0];
    assert_eq!(seen.headers["authorization"], "Bearer sk-or-test");
    assert_eq!(
        seen.headers["http-referer"],
        "https://github.com/possumtech/rummy"
    );
    assert_eq!(seen.headers["x-title"], "RUMMY");
    assert_eq!(seen.body["model"], "anthropic/claude-sonnet-4");
    assert_eq!(seen.body["include_reasoning"], true);
    assert_eq!(seen.body["usage"], json!({"include": true}));
    fake.stop().await;
}

#[actix_web::test]
async fn openrouter_context_discovery() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    let listing = json!({"data": [
        {"id": "anthropic/claude-sonnet-4", "name": "Anthropic: Claude Sonnet 4", "context_length": 200000,
         "pricing": {"prompt": "0.000003", "completion": "0.000015"}}
    ]});
    fake.always("/api/v1/models", Canned::json(200, listing));
    let (provider, model) = reg.resolve("openrouter/anthropic/claude-sonnet-4").unwrap();
    assert_eq!(
        reg.context_size(provider.as_ref(), &model).await.unwrap(),
        Some(200000)
    );
    assert_eq!(
        fake.seen("/api/v1/models")[0].headers["authorization"],
        "Bearer sk-or-test"
    );
    let (provider, model) = reg.resolve("openrouter/nobody/nothing").unwrap();
    let e = reg
        .context_size(provider.as_ref(), &model)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no context_length for \"nobody/nothing\""),
        "{e}"
    );
    fake.stop().await;
}

#[actix_web::test]
async fn xai_responses_request_and_reply() {
    let fake = FakeService::start().await;
    fake.queue(
        XAI_RESPONSES,
        [Canned::json(
            200,
            xai_reply("<update status=\"200\">ok</update>"),
        )],
    );
    let (result, _) = call(&registry(&fake, &[]), "xai/grok-4").await;
    let c = result.expect("completion");
    assert_eq!(c.content, "<update status=\"200\">ok</update>");
    assert_eq!(c.reasoning.as_deref(), Some("The user wants an update."));
    assert_eq!(c.model.as_deref(), Some("grok-4-0709"));
    let u = &c.usage;
    assert_eq!(
        (
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.reasoning_tokens,
            u.total_tokens
        ),
        (3000, 2500, 120, 90, 3120)
    );
    assert!((u.cost - 0.0123).abs() < 1e-12, "{}", u.cost);
    let seen = &fake.seen(XAI_RESPONSES)[0];
    assert_eq!(seen.headers["authorization"], "Bearer xai-test");
    assert_eq!(seen.body["model"], "grok-4");
    assert_eq!(seen.body["input"][0]["role"], "system");
    assert!(seen.body.get("messages").is_none());
    assert_eq!(seen.body["temperature"], 0.5);
    fake.stop().await;
}

#[actix_web::test]
async fn xai_context_discovery() {
    let fake = FakeService::start().await;
    let reg = registry(&fake, &[]);
    fake.always(
        "/xai/v1/models",
        Canned::json(
            200,
            json!({"data": [{"id": "grok-4", "object": "model", "context_length": 256000}]}),
        ),
    );
    fake.always(
        "/xai/v1/language-models/grok-3-mini",
        Canned::json(200, json!({"id": "grok-3-mini", "context_length": 131072})),
    );
    for (actual, window) in [
        ("xai/grok-4", 256000),
        ("xai/grok-4-latest", 256000),
        ("xai/grok-3-mini", 131072),
    ] {
        let (provider, model) = reg.resolve(actual).unwrap();
        assert_eq!(
            reg.context_size(provider.as_ref(), &model).await.unwrap(),
            Some(window),
            "{actual}"
        );
    }
    let (provider, model) = reg.resolve("xai/unknown").unwrap();
    let e = reg
        .context_size(provider.as_ref(), &model)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Cannot determine context size for xAI model \"unknown\""),
        "{e}"
    );
    fake.stop().await;
}

#[actix_web::test]
async fn replies_without_usage_count_zero() {
    let fake = FakeService::start().await;
    let mut openai = openai_reply("a");
    openai.as_object_mut().unwrap().remove("usage");
    fake.queue(OPENAI_CHAT, [Canned::json(200, openai)]);
    let mut ollama = ollama_reply("b", None);
    for key in ["prompt_eval_count", "eval_count"] {
        ollama.as_object_mut().unwrap().remove(key);
    }
    fake.queue(OLLAMA_CHAT, [Canned::json(200, ollama)]);
    let mut openrouter = openrouter_reply("c");
    openrouter.as_object_mut().unwrap().remove("usage");
    fake.queue(OPENROUTER_CHAT, [Canned::json(200, openrouter)]);
    let mut xai = xai_reply("d");
    xai.as_object_mut().unwrap().remove("usage");
    fake.queue(XAI_RESPONSES, [Canned::json(200, xai)]);
    let reg = registry(&fake, &[]);
    for (actual, content) in [
        ("openai/m", "a"),
        ("ollama/m", "b"),
        ("openrouter/v/m", "c"),
        ("xai/m", "d"),
    ] {
        let (result, _) = call(&reg, actual).await;
        let c = result.unwrap_or_else(|e| panic!("{actual}: {e}"));
        assert_eq!(c.content, content);
        assert_eq!(c.usage, rummy::store::TurnUsage::default(), "{actual}");
    }
    fake.stop().await;
}
