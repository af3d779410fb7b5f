//! Turn rules over a real WebSocket against the fake provider: a failed
//! entry aborts the rest of its turn and strikes (spec 02 §6.1 step 7, the
//! 2.0.0 defect fixed), and cycle detection (02 §6.3) ends a repeating run.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

async fn start_ask(c: &mut WsClient, prompt: &str) -> String {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": prompt, "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    r["alias"].as_str().expect("alias").to_string()
}

/// Runs one ask run over these replies; returns the final `run/state` params.
async fn run_to_end(name: &str, replies: Vec<Reply>) -> (Value, WsClient, String, TestServer) {
    let t = start_server(replies).await;
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        name,
        &common::project_dir(name),
    )
    .await;
    let alias = start_ask(&mut c, "go").await;
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    (last["params"].clone(), c, alias, t)
}

fn history(state: &Value) -> Vec<Value> {
    state["history"].as_array().expect("history").clone()
}

fn entry(state: &Value, path: &str) -> Value {
    history(state)
        .into_iter()
        .find(|h| h["path"] == path)
        .unwrap_or_else(|| panic!("{path} in history: {:#}", state["history"]))
}

/// The error entries of one turn, as (body, outcome).
fn errors(state: &Value, turn: i64) -> Vec<(String, String)> {
    let prefix = format!("log://turn_{turn}/error/");
    history(state)
        .into_iter()
        .filter(|h| h["path"].as_str().is_some_and(|p| p.starts_with(&prefix)))
        .map(|h| {
            (
                h["body"].as_str().unwrap_or_default().to_string(),
                h["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_failed_entry_aborts_the_rest_and_writes_its_error() {
    let (state, mut c, alias, _t) = run_to_end(
        "failed_aborts",
        vec![
            Reply::Content(
                r#"<set path="known://nothing*">x</set><set path="known://after">y</set><update status="200">done</update>"#
                    .into(),
            ),
            Reply::Content(r#"<update status="200">done</update>"#.into()),
        ],
    )
    .await;
    // The struck first turn could not conclude; the second one did.
    assert_eq!(state["status"], 200);
    assert_eq!(state["turn"], 2);
    let failed = entry(&state, "log://turn_1/set/known%3A//nothing*");
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["outcome"], "not_found");
    let aborted = entry(&state, "log://turn_1/set/known%3A//after");
    assert_eq!(aborted["state"], "failed");
    assert_eq!(aborted["outcome"], "aborted");
    assert_eq!(aborted["body"], "Aborted — preceding <set> failed.");
    // One error, the failure's own text, with the status of its outcome.
    assert_eq!(
        errors(&state, 1),
        vec![(
            "known://nothing* not found".to_string(),
            "status:404".to_string()
        )]
    );
    assert_eq!(errors(&state, 2), vec![]);
    let entries = c
        .call("getEntries", json!({"run": alias, "pattern": "known://*"}))
        .await
        .expect("entries");
    assert_eq!(entries, json!([]), "nothing after the failure was written");
}

#[actix_web::test]
async fn a_handler_that_reports_its_failure_keeps_one_error() {
    let (state, _c, _alias, _t) = run_to_end(
        "reported_failure",
        vec![
            Reply::Content(
                r#"<get/><set path="known://after">y</set><update status="200">done</update>"#
                    .into(),
            ),
            Reply::Content(r#"<update status="200">done</update>"#.into()),
        ],
    )
    .await;
    assert_eq!(state["status"], 200);
    assert_eq!(state["turn"], 2);
    let aborted = entry(&state, "log://turn_1/set/known%3A//after");
    assert_eq!(aborted["outcome"], "aborted");
    assert_eq!(aborted["body"], "Aborted — preceding <get> failed.");
    let turn_errors = errors(&state, 1);
    assert_eq!(turn_errors.len(), 1, "{turn_errors:?}");
    assert_eq!(turn_errors[0].1, "status:400");
}

#[actix_web::test]
async fn a_model_repeating_a_continuing_turn_is_stopped_as_a_loop() {
    let repeat = r#"<get path="known://missing"/><update status="102">looking</update>"#;
    let (state, _c, _alias, _t) =
        run_to_end("loop_continuing", vec![Reply::Content(repeat.into()); 8]).await;
    // MIN_CYCLES (3) identical turns make a loop: turns 3, 4 and 5 strike,
    // and the third strike abandons the run.
    assert_eq!(state["status"], 499);
    assert_eq!(state["turn"], 5);
    assert_eq!(errors(&state, 1), vec![]);
    assert_eq!(errors(&state, 2), vec![]);
    let looped = ("Loop detected".to_string(), "status:429".to_string());
    assert_eq!(errors(&state, 3), vec![looped.clone()]);
    assert_eq!(errors(&state, 4), vec![looped.clone()]);
    // The run's reason is the loop, written at close as a 400.
    let last = errors(&state, 5);
    assert_eq!(last.len(), 2, "{last:?}");
    assert!(last.contains(&looped), "{last:?}");
    assert!(
        last.contains(&("Loop detected".to_string(), "status:400".to_string())),
        "{last:?}"
    );
    assert!(history(&state)
        .iter()
        .all(|h| h["body"] != "Abandoned after 3 consecutive strikes."));
}

#[actix_web::test]
async fn a_model_repeating_one_command_ends_499_loop_detected() {
    let (state, _c, _alias, _t) = run_to_end(
        "loop_plain",
        vec![Reply::Content(r#"<get path="known://missing"/>"#.into()); 8],
    )
    .await;
    // No update: every turn strikes; the third also detects the loop,
    // which becomes the reason.
    assert_eq!(state["status"], 499);
    assert_eq!(state["turn"], 3);
    let missing = ("Missing update".to_string(), "status:422".to_string());
    assert_eq!(errors(&state, 1), vec![missing.clone()]);
    assert_eq!(errors(&state, 2), vec![missing.clone()]);
    let last = errors(&state, 3);
    assert_eq!(last.len(), 3, "{last:?}");
    assert!(last.contains(&missing), "{last:?}");
    assert!(last.contains(&("Loop detected".to_string(), "status:429".to_string())));
    assert!(last.contains(&("Loop detected".to_string(), "status:400".to_string())));
}

#[actix_web::test]
async fn varied_turns_are_not_a_loop() {
    let turn = |n: u32| Reply::Content(format!(r#"<get path="known://k{n}"/>"#));
    let (state, _c, _alias, _t) = run_to_end("no_loop", (1..=8).map(turn).collect()).await;
    assert_eq!(state["status"], 499);
    assert_eq!(state["turn"], 3);
    assert!(history(&state).iter().all(|h| h["body"] != "Loop detected"));
    assert!(history(&state)
        .iter()
        .any(|h| h["body"] == "Abandoned after 3 consecutive strikes."));
}
