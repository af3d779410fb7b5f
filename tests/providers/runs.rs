//! Whole runs through the turn loop, picking each provider by model alias,
//! over a real WebSocket.

use crate::common::WsClient;
use crate::fake::*;
use crate::{provider_vars, OLLAMA_CHAT, OPENAI_CHAT, OPENROUTER_CHAT, XAI_RESPONSES};
use rummy::store::{GetEntry, GetRun};
use rummy::{Config, Server, ServerHandle, StartOptions};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const DONE: &str = r#"<update status="200">done</update>"#;

struct Fixture {
    _home: tempfile::TempDir,
    fake: FakeService,
    server: ServerHandle,
}

/// A server whose four providers all point at one fake, with aliases
/// `oa` (openai), `ol` (ollama), `or` (openrouter) and `xa` (xai) whose
/// windows the fake reports.
async fn start(overrides: &[(&str, &str)]) -> Fixture {
    let home = tempfile::tempdir().expect("temp dir");
    let fake = FakeService::start().await;
    fake.always(
        "/v1/models",
        Canned::json(200, json!({"object": "list", "data": [{"id": "m1", "object": "model", "context_length": 32768}]})),
    );
    fake.always("/api/show", ollama_show(40960, None));
    fake.always(
        "/api/v1/models",
        Canned::json(
            200,
            json!({"data": [{"id": "vendor/m3", "context_length": 200000}]}),
        ),
    );
    fake.always(
        "/xai/v1/models",
        Canned::json(
            200,
            json!({"data": [{"id": "m4", "context_length": 256000}]}),
        ),
    );
    let mut vars = provider_vars(&fake);
    let db = home.path().join("rummy.db").display().to_string();
    let home_dir = home.path().display().to_string();
    vars.extend(
        [
            ("RUMMY_HOME", home_dir.as_str()),
            ("RUMMY_DB_PATH", db.as_str()),
            ("PORT", "0"),
            ("RUMMY_MODEL_oa", "openai/m1"),
            ("RUMMY_MODEL_ol", "ollama/m2"),
            ("RUMMY_MODEL_or", "openrouter/vendor/m3"),
            ("RUMMY_MODEL_xa", "xai/m4"),
        ]
        .iter()
        .chain(overrides)
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let server = Server::start(
        Config::from_vars(vars).expect("config"),
        StartOptions::default(),
    )
    .await
    .expect("server starts");
    Fixture {
        _home: home,
        fake,
        server,
    }
}

async fn hello(f: &Fixture, project: &str) -> WsClient {
    let mut c = WsClient::connect(f.server.local_addr.expect("listening")).await;
    c.call(
        "rummy/hello",
        json!({"name": project, "projectRoot": crate::common::project_dir(project), "clientVersion": "2.0.0"}),
    )
    .await
    .expect("hello");
    c
}

async fn start_run(c: &mut WsClient, model: &str) -> Result<String, Value> {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "Say done.", "attributes": {"model": model, "mode": "ask", "noRepo": true}}),
        )
        .await?;
    Ok(r["alias"].as_str().expect("alias").to_string())
}

async fn final_state(c: &mut WsClient, alias: &str) -> Value {
    let n = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    n["params"].clone()
}

fn history_has(state: &Value, pred: impl Fn(&Value) -> bool) -> bool {
    state["history"]
        .as_array()
        .is_some_and(|h| h.iter().any(pred))
}

#[actix_web::test]
async fn each_provider_runs_a_loop_by_alias() {
    let f = start(&[]).await;
    f.fake
        .queue(OPENAI_CHAT, [Canned::json(200, openai_reply(DONE))]);
    f.fake.queue(
        OLLAMA_CHAT,
        [Canned::json(200, ollama_reply(DONE, Some("Easy.")))],
    );
    f.fake
        .queue(OPENROUTER_CHAT, [Canned::json(200, openrouter_reply(DONE))]);
    f.fake
        .queue(XAI_RESPONSES, [Canned::json(200, xai_reply(DONE))]);
    let mut c = hello(&f, "providers").await;
    // (alias, prompt tokens, cached tokens, cost, discovered window)
    let expected = [
        ("oa", 1117, 1024, 0.0, 32768),
        ("ol", 812, 0, 0.0, 40960),
        ("or", 2000, 1500, 0.0072, 200000),
        ("xa", 3000, 2500, 0.0123, 256000),
    ];
    for (model, prompt, cached, cost, window) in expected {
        let alias = start_run(&mut c, model).await.expect("run starts");
        let state = final_state(&mut c, &alias).await;
        assert_eq!(state["status"], 200, "{model}: {state}");
        let t = &state["telemetry"];
        assert_eq!(t["prompt_tokens"], prompt, "{model}: {t}");
        assert_eq!(t["cached_tokens"], cached, "{model}: {t}");
        assert!(
            (t["cost"].as_f64().unwrap_or(-1.0) - cost).abs() < 1e-9,
            "{model}: {t}"
        );
        assert_eq!(t["context_size"], window, "{model}: {t}");
    }
    // Discovered windows were written back to the models table.
    let models = c.call("getModels", json!({})).await.expect("getModels");
    for (alias, window) in [("oa", 32768), ("ol", 40960), ("or", 200000), ("xa", 256000)] {
        let row = models
            .as_array()
            .and_then(|m| m.iter().find(|r| r["alias"] == alias))
            .unwrap_or_else(|| panic!("{alias} in {models}"));
        assert_eq!(row["context_length"], window);
    }
    // Ollama got the window as num_ctx.
    assert_eq!(
        f.fake.seen(OLLAMA_CHAT)[0].body["options"]["num_ctx"],
        40960
    );
}

#[actix_web::test]
async fn a_configured_window_wins_over_discovery() {
    let f = start(&[("RUMMY_CONTEXT_ol", "9000")]).await;
    f.fake
        .queue(OLLAMA_CHAT, [Canned::json(200, ollama_reply(DONE, None))]);
    let mut c = hello(&f, "window").await;
    let alias = start_run(&mut c, "ol").await.expect("run starts");
    let state = final_state(&mut c, &alias).await;
    assert_eq!(state["status"], 200);
    assert_eq!(state["telemetry"]["context_size"], 9000);
    assert!(f.fake.seen("/api/show").is_empty());
    assert_eq!(f.fake.seen(OLLAMA_CHAT)[0].body["options"]["num_ctx"], 9000);
}

#[actix_web::test]
async fn retries_show_as_progress_and_the_run_goes_on() {
    let f = start(&[]).await;
    f.fake.queue(
        OPENAI_CHAT,
        [llama_cpp_loading(), Canned::json(200, openai_reply(DONE))],
    );
    let mut c = hello(&f, "retrying").await;
    let alias = start_run(&mut c, "oa").await.expect("run starts");
    let retrying = c
        .wait_notification("run/progress", LONG, |n| {
            n["params"]["run"] == alias.as_str() && n["params"]["status"] == "retrying"
        })
        .await;
    let p = &retrying["params"];
    assert_eq!(p["turn"], 1);
    assert_eq!(p["attempt"], 1);
    assert!(p["delayMs"].as_u64().is_some(), "{p}");
    assert!(
        p["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Loading model"),
        "{p}"
    );
    let state = final_state(&mut c, &alias).await;
    assert_eq!(state["status"], 200);
    assert_eq!(f.fake.seen(OPENAI_CHAT).len(), 2);
}

#[actix_web::test]
async fn context_exceeded_strikes_and_a_later_turn_recovers() {
    let f = start(&[]).await;
    f.fake.queue(
        OPENAI_CHAT,
        [
            openai_context_exceeded(),
            Canned::json(200, openai_reply(DONE)),
        ],
    );
    let mut c = hello(&f, "overflow").await;
    let alias = start_run(&mut c, "oa").await.expect("run starts");
    let state = final_state(&mut c, &alias).await;
    assert_eq!(state["status"], 200, "{state}");
    assert!(
        history_has(&state, |h| {
            h["outcome"] == "status:413"
                && h["body"].as_str().is_some_and(|b| {
                    b.starts_with("LLM context exceeded: OpenAI-compatible API error: 400")
                })
        }),
        "{state}"
    );
}

#[actix_web::test]
async fn a_client_error_fails_the_run_with_the_providers_message() {
    let f = start(&[]).await;
    f.fake.queue(
        OPENROUTER_CHAT,
        [openrouter_error(
            402,
            "Insufficient credits. Add more using https://openrouter.ai/credits",
        )],
    );
    let mut c = hello(&f, "credits").await;
    let alias = start_run(&mut c, "or").await.expect("run starts");
    let state = final_state(&mut c, &alias).await;
    assert_eq!(state["status"], 500);
    assert!(
        history_has(&state, |h| h["body"].as_str().is_some_and(|b| b
            .contains("OpenRouter API error: 402")
            && b.contains("Insufficient credits"))),
        "{state}"
    );
    assert_eq!(f.fake.seen(OPENROUTER_CHAT).len(), 1);
}

#[actix_web::test]
async fn cancelling_a_run_drops_the_slow_call_and_writes_nothing_of_it() {
    let f = start(&[]).await;
    f.fake.always(
        XAI_RESPONSES,
        Canned::json(200, xai_reply(DONE)).after(Duration::from_secs(60)),
    );
    let mut c = hello(&f, "cancel").await;
    let alias = start_run(&mut c, "xa").await.expect("run starts");
    f.fake.wait_for(XAI_RESPONSES, 1, LONG).await;
    c.call(
        "set",
        json!({"path": format!("run://{alias}"), "state": "cancelled"}),
    )
    .await
    .expect("cancel");
    let state = final_state(&mut c, &alias).await;
    assert_eq!(state["status"], 499);
    assert_eq!(state["telemetry"]["prompt_tokens"], 0);
    // The call was really abandoned: the service saw the connection close before its reply.
    f.fake
        .wait_for_drop(XAI_RESPONSES, 1, Duration::from_secs(10))
        .await;
    let run = f
        .server
        .store
        .run(GetRun {
            alias: alias.clone(),
            project_id: None,
        })
        .await
        .expect("store")
        .expect("run");
    for path in ["assistant://1", "model://1", "reasoning://1"] {
        let entry = f
            .server
            .store
            .run(GetEntry {
                run_id: run.id,
                path: path.into(),
            })
            .await
            .expect("store");
        assert!(entry.is_none(), "{path} was written");
    }
}

#[actix_web::test]
async fn unconfigured_providers_and_bad_aliases_are_refused_clearly() {
    let f = start(&[("OLLAMA_BASE_URL", ""), ("XAI_API_KEY", "")]).await;
    let mut c = hello(&f, "config").await;
    let e = start_run(&mut c, "ol").await.expect_err("ollama is off");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"ollama\" is not configured") && message.contains("OLLAMA_BASE_URL"),
        "{e}"
    );
    let e = start_run(&mut c, "xa").await.expect_err("xai has no key");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("XAI_API_KEY"),
        "{e}"
    );

    for (params, text) in [
        (
            json!({"alias": "x", "actual": "opnai/gpt-4o"}),
            "unknown provider \\\"opnai\\\"",
        ),
        (
            json!({"alias": "x", "actual": "gpt-4o"}),
            "{provider}/{model}",
        ),
        (
            json!({"alias": "a b", "actual": "openai/gpt-4o"}),
            "alias must be",
        ),
        (
            json!({"alias": "x", "actual": "openai/m", "contextLength": 0}),
            "contextLength must be",
        ),
    ] {
        let e = c
            .call("addModel", params.clone())
            .await
            .expect_err("refused");
        assert_eq!(e["code"], -32602, "{params}: {e}");
        assert!(e.to_string().contains(text), "{params}: {e}");
    }
    let e = c
        .call("removeModel", json!({"alias": ""}))
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("alias must be"), "{e}");
    // A valid alias for an unconfigured provider is stored; runs say why they cannot use it.
    c.call(
        "addModel",
        json!({"alias": "later", "actual": "ollama/llama3.2"}),
    )
    .await
    .expect("addModel");
    let e = start_run(&mut c, "later").await.expect_err("ollama is off");
    assert!(e.to_string().contains("OLLAMA_BASE_URL"), "{e}");
}

/// A `Retry-After` no wait can honour used to panic inside the run's drain,
/// leaving the run at 102 forever.
#[actix_web::test]
async fn an_unrepresentable_retry_after_ends_the_run_and_the_server_goes_on() {
    let f = start(&[]).await;
    let mut c = hello(&f, "retry-after").await;
    for (header, raw) in [("retry-after", "1e300"), ("retry-after-ms", "-5")] {
        let before = f.fake.seen(OPENAI_CHAT).len();
        f.fake
            .queue(OPENAI_CHAT, [openai_rate_limited().header(header, raw)]);
        let alias = start_run(&mut c, "oa").await.expect("run starts");
        let state = final_state(&mut c, &alias).await;
        assert_eq!(state["status"], 500, "{header}: {state}");
        assert!(
            history_has(&state, |h| {
                h["body"]
                    .as_str()
                    .is_some_and(|b| b.contains("Rate limit reached") && b.contains(raw))
            }),
            "{header}: {state}"
        );
        // Given up at once: no second call.
        assert_eq!(f.fake.seen(OPENAI_CHAT).len(), before + 1, "{header}");
    }
    // The server still serves: this connection, a new one, and a new run.
    f.fake
        .queue(OPENAI_CHAT, [Canned::json(200, openai_reply(DONE))]);
    let mut other = hello(&f, "retry-after").await;
    let alias = start_run(&mut other, "oa").await.expect("run starts");
    assert_eq!(final_state(&mut other, &alias).await["status"], 200);
    c.call("getRuns", json!({})).await.expect("getRuns");
}
