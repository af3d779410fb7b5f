//! One run end to end over a real WebSocket, against a fake
//! OpenAI-compatible provider that speaks the real wire format.

mod common;

use common::{start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn start(replies: Vec<Reply>) -> TestServer {
    start_server(replies).await
}

async fn hello(addr: std::net::SocketAddr, project: &str) -> WsClient {
    let mut c = WsClient::connect(addr).await;
    let root = common::project_dir(project);
    let r = c
        .call(
            "rummy/hello",
            json!({"name": project, "projectRoot": root, "clientVersion": "2.0.0"}),
        )
        .await
        .expect("hello succeeds");
    assert_eq!(r["rummyVersion"], "2.0.0");
    assert_eq!(r["projectRoot"], root);
    assert!(r["projectId"].as_i64().is_some());
    c
}

async fn start_run(c: &mut WsClient, model: &str, prompt: &str) -> String {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": prompt, "attributes": {"model": model, "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    assert_eq!(r["ok"], true);
    r["alias"].as_str().expect("alias").to_string()
}

/// Every notification up to and including the run's final `run/state`.
async fn collect_until_final(c: &mut WsClient, alias: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + LONG;
    while std::time::Instant::now() < deadline {
        seen.extend(c.drain_notifications(Duration::from_millis(100)).await);
        if seen
            .iter()
            .any(|n| n["method"] == "run/state" && is_final(n, alias))
        {
            return seen;
        }
    }
    panic!("run {alias} did not finish; saw {seen:?}");
}

fn is_final(n: &Value, alias: &str) -> bool {
    n["params"]["run"] == alias && n["params"]["status"] != 102
}

/// (turn, status) of every run/state for a run, in order.
fn states(notifications: &[Value], alias: &str) -> Vec<(i64, i64)> {
    notifications
        .iter()
        .filter(|n| n["method"] == "run/state" && n["params"]["run"] == alias)
        .map(|n| {
            (
                n["params"]["turn"].as_i64().unwrap_or(-1),
                n["params"]["status"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

const TWO_TURNS: [&str; 2] = [
    r#"<set path="known://answer">42</set><update status="102">noted</update>"#,
    r#"<update status="200">done</update>"#,
];

fn two_turns() -> Vec<Reply> {
    TWO_TURNS
        .iter()
        .map(|s| Reply::Content(s.to_string()))
        .collect()
}

#[actix_web::test]
async fn a_run_goes_end_to_end_and_every_project_client_sees_it() {
    let f = start(two_turns()).await;
    let addr = f.server.local_addr.expect("listening");
    let mut starter = hello(addr, "alpha").await;
    let mut watcher = hello(addr, "alpha").await;
    let mut stranger = hello(addr, "beta").await;

    let added = starter
        .call(
            "addModel",
            json!({"alias": "answerer", "actual": "openai/fake-model"}),
        )
        .await
        .expect("addModel");
    assert_eq!(added["alias"], "answerer");
    let models = starter
        .call("getModels", json!({}))
        .await
        .expect("getModels");
    let aliases: Vec<&str> = models
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["alias"].as_str())
        .collect();
    assert_eq!(aliases, vec!["answerer", "fake"]);

    let alias = start_run(&mut starter, "answerer", "What is six times seven?").await;
    assert!(alias.starts_with("answerer_"), "{alias}");

    let seen_by_starter = collect_until_final(&mut starter, &alias).await;
    let last = seen_by_starter
        .iter()
        .rev()
        .find(|n| n["method"] == "run/state")
        .expect("final state")
        .clone();
    assert_eq!(last["params"]["status"], 200);
    assert_eq!(last["params"]["turn"], 2);
    assert_eq!(last["params"]["summary"], "done");
    let telemetry = &last["params"]["telemetry"];
    assert_eq!(telemetry["modelAlias"], "answerer");
    assert_eq!(telemetry["context_size"], 32768);
    assert_eq!(telemetry["ceiling"], 29491);
    assert_eq!(telemetry["prompt_tokens"], 200);
    let progress: Vec<&Value> = seen_by_starter
        .iter()
        .filter(|n| n["method"] == "run/progress")
        .map(|n| &n["params"]["status"])
        .collect();
    assert_eq!(
        progress,
        vec!["thinking", "processing", "thinking", "processing"]
    );

    // (b) the second client of the project saw the same notifications.
    let seen_by_watcher = collect_until_final(&mut watcher, &alias).await;
    let starter_states = states(&seen_by_starter, &alias);
    assert_eq!(starter_states, states(&seen_by_watcher, &alias));
    assert!(starter_states.contains(&(1, 102)), "{starter_states:?}");
    assert_eq!(starter_states.last(), Some(&(2, 200)));
    let settle = Duration::from_millis(300);

    // (c) a client of another project heard nothing of it.
    let foreign = stranger.drain_notifications(settle).await;
    assert!(
        foreign.iter().all(|n| n["params"]["run"] != alias),
        "{foreign:?}"
    );
    let err = stranger
        .call("getRun", json!({"run": alias}))
        .await
        .expect_err("another project's run is not addressable");
    assert_eq!(err["code"], -32602);

    // getRun shows the write and the log entries of both turns.
    let run = starter
        .call("getRun", json!({"run": alias}))
        .await
        .expect("getRun");
    assert_eq!(run["status"], 200);
    assert_eq!(run["turn"], 2);
    assert_eq!(run["model"], "answerer");
    let history = run["context"]["history"].as_array().expect("history");
    let find = |path: &str| history.iter().find(|h| h["path"] == path);
    let set = find("log://turn_1/set/known%3A//answer").expect("set log entry");
    assert_eq!(set["body"], "42");
    assert_eq!(set["attributes"]["path"], "known://answer");
    assert_eq!(
        find("log://turn_1/update/noted").expect("turn 1 update")["turn"],
        1
    );
    assert_eq!(
        find("log://turn_2/update/done").expect("turn 2 update")["turn"],
        2
    );
    assert_eq!(
        find("prompt://1").expect("prompt")["body"],
        "What is six times seven?"
    );

    // The entry itself, read through the embedded store API.
    let row = f
        .server
        .store
        .run(rummy::store::GetRun {
            alias: alias.clone(),
            project_id: None,
        })
        .await
        .expect("store")
        .expect("run row");
    let answer = f
        .server
        .store
        .run(rummy::store::GetEntry {
            run_id: row.id,
            path: "known://answer".into(),
        })
        .await
        .expect("store")
        .expect("known://answer exists");
    assert_eq!(answer.body, "42");
    assert_eq!(answer.visibility, "visible");
    for audit in ["system://1", "user://1", "assistant://1", "system://2"] {
        let entry = f
            .server
            .store
            .run(rummy::store::GetEntry {
                run_id: row.id,
                path: audit.into(),
            })
            .await
            .expect("store");
        assert!(entry.is_some(), "missing audit entry {audit}");
    }

    // The model saw its own write on the second turn.
    let requests = f.provider.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["model"], "fake-model");
    let system = requests[1]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    let user = requests[1]["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        system.contains("<known path=\"known://answer\""),
        "{system}"
    );
    assert!(user.contains("<prompt mode=\"ask\""), "{user}");
    assert!(user.contains("<budget tokenUsage="), "{user}");

    let runs = starter.call("getRuns", json!({})).await.expect("getRuns");
    assert_eq!(runs[0]["run"], alias);
    assert_eq!(runs[0]["status"], 200);
    assert_eq!(runs[0]["summary"], "done");

    let logged = f
        .server
        .store
        .run(rummy::store::CountRpcLog("set".into()))
        .await
        .expect("store");
    assert_eq!(logged, 1);
}

#[actix_web::test]
async fn bad_requests_get_standard_errors_and_the_connection_survives() {
    let f = start(vec![]).await;
    let mut c = WsClient::connect(f.server.local_addr.expect("listening")).await;

    let parse = c.send_raw("{not json").await;
    assert_eq!(parse["error"]["code"], -32700);
    assert_eq!(parse["id"], Value::Null);

    let unknown = c
        .call_unchecked("no/such/method", json!({}))
        .await
        .expect_err("unknown method");
    assert_eq!(unknown["code"], -32601);
    assert_eq!(unknown["message"], "Method 'no/such/method' not found.");

    let batch = c
        .send_raw(r#"[{"jsonrpc":"2.0","id":9,"method":"ping"}]"#)
        .await;
    assert_eq!(batch["error"]["code"], -32600);

    let missing = c
        .call_unchecked("rummy/hello", json!({"projectRoot": "/tmp/x"}))
        .await
        .expect_err("name is required");
    assert_eq!(missing["code"], -32602);
    assert_eq!(missing["message"], "rummy/hello: name is required");

    let wrong_type = c
        .call_unchecked("addModel", json!({"alias": 5, "actual": "openai/x"}))
        .await
        .expect_err("wrong type");
    assert_eq!(wrong_type["code"], -32602);

    let version = c
        .call(
            "rummy/hello",
            json!({"name": "x", "projectRoot": "/tmp/x", "clientVersion": "3.1.0"}),
        )
        .await
        .expect_err("major mismatch");
    assert_eq!(
        version["message"],
        "protocol mismatch: server 2.0.0, client 3.1.0. Clients must match MAJOR."
    );

    let gated = c.call("getRuns", json!({})).await.expect_err("needs hello");
    assert_eq!(gated["code"], -32002);

    assert_eq!(c.call("ping", json!({})).await.expect("ping"), json!({}));
    // The older handshake verb binds just the same.
    c.call(
        "init",
        json!({"name": "legacy", "projectRoot": common::project_dir("legacy")}),
    )
    .await
    .expect("init");
    assert_eq!(
        c.call("getRuns", json!({})).await.expect("getRuns"),
        json!([])
    );

    let no_run = c
        .call_unchecked("getRun", json!({}))
        .await
        .expect_err("run is required");
    assert_eq!(no_run["message"], "run is required");
    let no_mode = c
        .call(
            "set",
            json!({"path": "run://", "body": "x", "attributes": {"model": "fake"}}),
        )
        .await
        .expect_err("mode is required");
    assert_eq!(
        no_mode["message"],
        "set run://: attributes.mode is required and must be \"ask\" or \"act\" (got undefined)"
    );
    let bad_model = c
        .call(
            "set",
            json!({"path": "run://", "attributes": {"model": "ghost", "mode": "ask"}}),
        )
        .await
        .expect_err("unknown model");
    assert_eq!(bad_model["code"], -32602);
    assert_eq!(
        c.call("getRuns", json!({})).await.expect("getRuns"),
        json!([])
    );
    assert!(f.provider.requests().is_empty());

    let d = c.call("discover", json!({})).await.expect("discover");
    for method in [
        "rummy/hello",
        "ping",
        "discover",
        "getModels",
        "addModel",
        "removeModel",
        "set",
        "getRuns",
        "getRun",
    ] {
        assert!(
            d["methods"][method]["description"].is_string(),
            "discover lacks {method}"
        );
    }
    assert!(d["notifications"]["run/state"].is_object());
    assert!(d["notifications"]["run/progress"].is_object());
}

#[actix_web::test]
async fn a_run_outlives_the_client_that_started_it() {
    let mut replies = vec![Reply::Delayed(
        Duration::from_millis(700),
        TWO_TURNS[0].to_string(),
    )];
    replies.push(Reply::Content(TWO_TURNS[1].to_string()));
    let f = start(replies).await;
    let addr = f.server.local_addr.expect("listening");
    let mut starter = hello(addr, "gamma").await;
    let mut watcher = hello(addr, "gamma").await;
    let alias = start_run(&mut starter, "fake", "Keep going without me").await;
    starter.close().await;

    let last = watcher
        .wait_notification("run/state", LONG, |n| is_final(n, &alias))
        .await;
    assert_eq!(last["params"]["status"], 200);
    let run = watcher
        .call("getRun", json!({"run": alias}))
        .await
        .expect("getRun");
    assert_eq!(run["status"], 200);
    assert_eq!(f.provider.requests().len(), 2);
}

#[actix_web::test]
async fn any_client_of_the_project_can_cancel_a_run_mid_call() {
    // The provider would take a minute; cancelling must not wait for it.
    let f = start(vec![Reply::Delayed(
        Duration::from_secs(60),
        TWO_TURNS[1].to_string(),
    )])
    .await;
    let addr = f.server.local_addr.expect("listening");
    let mut starter = hello(addr, "delta").await;
    let mut other = hello(addr, "delta").await;
    let alias = start_run(&mut starter, "fake", "Take your time").await;
    other
        .wait_notification("run/progress", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] == "thinking"
        })
        .await;
    let r = other
        .call(
            "set",
            json!({"path": format!("run://{alias}"), "state": "cancelled"}),
        )
        .await
        .expect("cancel");
    assert_eq!(r, json!({"ok": true, "alias": alias}));
    let last = starter
        .wait_notification("run/state", Duration::from_secs(10), |n| {
            is_final(n, &alias)
        })
        .await;
    assert_eq!(last["params"]["status"], 499);
    let run = other
        .call("getRun", json!({"run": alias}))
        .await
        .expect("getRun");
    assert_eq!(run["status"], 499);
    // The call was really abandoned: the provider saw the connection close before its reply.
    f.provider.wait_for_drop(1, Duration::from_secs(10)).await;
    // Nothing of the dropped call was recorded.
    assert!(run["context"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .all(|h| h["path"] != "log://turn_1/update/done"));
}

#[actix_web::test]
async fn tagless_replies_strike_until_the_run_is_abandoned() {
    let prose = || Reply::Content("I would rather chat.".to_string());
    let f = start(vec![prose(), prose(), prose()]).await;
    let mut c = hello(f.server.local_addr.expect("listening"), "epsilon").await;
    let alias = start_run(&mut c, "fake", "Answer with tags").await;
    let last = c
        .wait_notification("run/state", LONG, |n| is_final(n, &alias))
        .await;
    assert_eq!(last["params"]["status"], 499);
    let history = last["params"]["history"].as_array().expect("history");
    assert!(history.iter().any(|h| h["path"]
        .as_str()
        .unwrap_or_default()
        .starts_with("log://turn_1/error/Response%20contained%20no%20actionable%20tags.")));
    assert!(history
        .iter()
        .any(|h| h["body"] == "Abandoned after 3 consecutive strikes."));
}
