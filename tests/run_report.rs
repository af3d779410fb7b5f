//! What clients learn about runs: getRun's last prompt and summary, the
//! cached and reasoning token sums (getRun and the final run/state), the
//! RUMMY_HOME transcripts and the start-up retention purge.

mod common;

use actix_web::{web, App, HttpResponse, HttpServer};
use common::{test_vars, FakeProvider, Reply, WsClient};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn serve(home: &Path, provider: &str, extra: &[(&str, &str)]) -> rummy::ServerHandle {
    let mut vars = test_vars(home, provider);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = rummy::Config::from_vars(vars).expect("config");
    rummy::Server::start(config, rummy::StartOptions::default())
        .await
        .expect("server starts")
}

async fn connect(server: &rummy::ServerHandle, home: &Path) -> WsClient {
    let root = home.join("proj");
    std::fs::create_dir_all(&root).expect("root");
    common::hello_client(
        server.local_addr.expect("listening"),
        "report",
        &root.to_string_lossy(),
    )
    .await
}

/// Runs a prompt (a new run, or `run` continued) and returns its alias
/// and final run/state params.
async fn run_to_end(c: &mut WsClient, run: Option<&str>, prompt: &str) -> (String, Value) {
    let path = run.map_or("run://".to_string(), |r| format!("run://{r}"));
    let r = c
        .call(
            "set",
            json!({"path": path, "body": prompt,
                   "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let done = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    (alias, done["params"].clone())
}

/// An OpenAI-compatible provider whose replies report cached and reasoning tokens.
async fn usage_provider() -> (String, actix_web::dev::ServerHandle) {
    async fn chat() -> HttpResponse {
        HttpResponse::Ok().json(json!({
            "id": "chatcmpl-usage",
            "object": "chat.completion",
            "created": 0,
            "model": "fake-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant",
                            "content": "<update status=\"200\">summed</update>"}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                      "prompt_tokens_details": {"cached_tokens": 80},
                      "completion_tokens_details": {"reasoning_tokens": 12}}
        }))
    }
    async fn models() -> HttpResponse {
        HttpResponse::Ok().json(json!({"object": "list",
            "data": [{"id": "fake-model", "object": "model", "context_length": 32768}]}))
    }
    let server = HttpServer::new(|| {
        App::new()
            .route("/v1/chat/completions", web::post().to(chat))
            .route("/v1/models", web::get().to(models))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), handle)
}

#[actix_web::test]
async fn get_run_names_the_last_prompt_and_summary() {
    let home = tempfile::tempdir().unwrap();
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<update status="200">first answer</update>"#.into()),
        Reply::Content(r#"<update status="200">second answer</update>"#.into()),
    ])
    .await;
    let server = serve(home.path(), &provider.base_url(), &[]).await;
    let mut c = connect(&server, home.path()).await;
    let (run, _) = run_to_end(&mut c, None, "What is first?").await;
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(detail["last_user_prompt"], "What is first?");
    assert_eq!(detail["last_summary"], "first answer");

    run_to_end(&mut c, Some(&run), "And second?").await;
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(detail["last_user_prompt"], "And second?");
    assert_eq!(detail["last_summary"], "second answer");
    let usage = &detail["context"]["telemetry"];
    assert_eq!(usage["prompt_tokens"], 200);
    assert_eq!(usage["cached_tokens"], 0);
    assert_eq!(usage["reasoning_tokens"], 0);
    server.stop().await;
}

#[actix_web::test]
async fn cached_and_reasoning_tokens_are_summed_for_get_run_and_the_final_state() {
    let home = tempfile::tempdir().unwrap();
    let (url, provider) = usage_provider().await;
    let server = serve(home.path(), &url, &[]).await;
    let mut c = connect(&server, home.path()).await;
    let (run, first) = run_to_end(&mut c, None, "One").await;
    assert_eq!(first["status"], 200);
    assert_eq!(first["telemetry"]["cached_tokens"], 80);
    assert_eq!(first["telemetry"]["reasoning_tokens"], 12);
    let (_, second) = run_to_end(&mut c, Some(&run), "Two").await;
    let t = &second["telemetry"];
    assert_eq!(
        (
            &t["prompt_tokens"],
            &t["cached_tokens"],
            &t["completion_tokens"],
            &t["reasoning_tokens"],
            &t["total_tokens"]
        ),
        (
            &json!(240),
            &json!(160),
            &json!(60),
            &json!(24),
            &json!(300)
        )
    );
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(
        detail["context"]["telemetry"],
        json!({"prompt_tokens": 240, "cached_tokens": 160, "completion_tokens": 60,
               "reasoning_tokens": 24, "total_tokens": 300, "cost": 0.0})
    );
    server.stop().await;
    provider.stop(false).await;
}

#[actix_web::test]
async fn transcripts_are_written_only_when_asked_for() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<update status="200">TRANSCRIBED</update>"#.into()),
        Reply::Content(r#"<update status="200">untranscribed</update>"#.into()),
    ])
    .await;
    let home = tempfile::tempdir().unwrap();
    let server = serve(
        home.path(),
        &provider.base_url(),
        &[("RUMMY_TRANSCRIPTS", "1")],
    )
    .await;
    let mut c = connect(&server, home.path()).await;
    let (run, _) = run_to_end(&mut c, None, "Write it down").await;
    let turn = home.path().join("turns").join(&run).join("turn_001.txt");
    let text = std::fs::read_to_string(&turn).expect("turn transcript");
    for part in [
        "TURN 1 — model=fake",
        "--- SYSTEM ---",
        "--- USER ---",
        "Write it down",
        "--- ASSISTANT ---\n<update status=\"200\">TRANSCRIBED</update>",
        "--- USAGE ---",
        "\"prompt_tokens\":100",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    let last = std::fs::read_to_string(home.path().join("last_run.txt")).expect("last_run");
    assert!(last.starts_with(&format!("# rummy transcript of run {run}\n")));
    assert!(last.contains("TRANSCRIBED"));
    server.stop().await;

    let quiet_home = tempfile::tempdir().unwrap();
    let server = serve(quiet_home.path(), &provider.base_url(), &[]).await;
    let mut c = connect(&server, quiet_home.path()).await;
    let (_, done) = run_to_end(&mut c, None, "Forget it").await;
    assert_eq!(done["status"], 200);
    assert!(!quiet_home.path().join("turns").exists());
    assert!(!quiet_home.path().join("last_run.txt").exists());
    server.stop().await;
}

fn age(db: &Path, alias: &str, days: i64, loops_too: bool) {
    let mut conn = diesel::SqliteConnection::establish(&db.to_string_lossy()).expect("db");
    let when = format!("datetime('now', '-{days} days')");
    diesel::sql_query(format!(
        "UPDATE runs SET created_at = {when} WHERE alias = '{alias}'"
    ))
    .execute(&mut conn)
    .expect("age run");
    if loops_too {
        for table in ["loops", "turns"] {
            diesel::sql_query(format!(
                "UPDATE {table} SET created_at = {when} \
                 WHERE run_id = (SELECT id FROM runs WHERE alias = '{alias}')"
            ))
            .execute(&mut conn)
            .expect("age children");
        }
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel::SqliteConnection::establish(&db.to_string_lossy()).expect("db");
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .expect("count")
        .n
}

#[actix_web::test]
async fn the_retention_purge_removes_only_old_finished_runs() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<update status="200">old</update>"#.into()),
        Reply::Content(r#"<update status="200">recent</update>"#.into()),
        Reply::Content(r#"<update status="200">old but busy</update>"#.into()),
        Reply::Error(400, "bad request".into()),
    ])
    .await;
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("rummy.db");
    let server = serve(home.path(), &provider.base_url(), &[]).await;
    let mut c = connect(&server, home.path()).await;
    let (old, _) = run_to_end(&mut c, None, "old").await;
    let (recent, _) = run_to_end(&mut c, None, "recent").await;
    let (busy, _) = run_to_end(&mut c, None, "busy").await;
    let (failed, state) = run_to_end(&mut c, None, "fails").await;
    assert_eq!(state["status"], 500, "{state}");
    c.close().await;
    server.stop().await;

    age(&db, &old, 40, true);
    age(&db, &failed, 40, true);
    // Created long ago, but its last loop and turn are recent.
    age(&db, &busy, 40, false);
    let old_entries = count(
        &db,
        &format!(
            "SELECT count(*) AS n FROM entries WHERE scope = 'run:' || \
             (SELECT id FROM runs WHERE alias = '{old}')"
        ),
    );
    assert!(old_entries > 0);

    // Unset: nothing is purged.
    let server = serve(home.path(), &provider.base_url(), &[]).await;
    server.stop().await;
    assert_eq!(count(&db, "SELECT count(*) AS n FROM runs"), 4);
    // A run still in flight is never purged, however old (inserted after
    // the boot above, whose recovery would have ended it).
    {
        let mut conn = diesel::SqliteConnection::establish(&db.to_string_lossy()).unwrap();
        diesel::sql_query(
            "INSERT INTO runs (project_id, model, status, alias, created_at) \
             SELECT project_id, 'fake', 202, 'waiting_run', datetime('now', '-90 days') \
             FROM runs LIMIT 1",
        )
        .execute(&mut conn)
        .unwrap();
    }

    let server = serve(
        home.path(),
        &provider.base_url(),
        &[("RUMMY_RETENTION_DAYS", "30")],
    )
    .await;
    let mut c = connect(&server, home.path()).await;
    let runs = c.call("getRuns", json!({})).await.unwrap();
    let mut left: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap())
        .collect();
    left.sort_unstable();
    let mut expected = vec![recent.as_str(), busy.as_str(), "waiting_run"];
    expected.sort_unstable();
    assert_eq!(left, expected);
    let e = c
        .call_unchecked("getRun", json!({"run": old}))
        .await
        .unwrap_err();
    assert_eq!(e["code"], -32602);
    c.close().await;
    server.stop().await;
    for table in ["loops", "turns", "run_views", "turn_context"] {
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT count(*) AS n FROM {table} WHERE run_id NOT IN (SELECT id FROM runs)"
                )
            ),
            0,
            "{table} rows of purged runs are gone"
        );
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM entries e WHERE e.scope LIKE 'run:%' \
             AND CAST(substr(e.scope, 5) AS INTEGER) NOT IN (SELECT id FROM runs)"
        ),
        0,
        "run-only entries of purged runs are gone"
    );
}
