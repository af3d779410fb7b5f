//! Budget enforcement end to end: a 12,000-token window, a model that
//! writes about 48 notes of about 400 tokens over six turns, reads a
//! project file and tries one oversized note. No packet may reach the
//! provider larger than the window; the budget must demote instead.

mod common;

use common::{hello_client, start_server, Reply, TestServer};
use rummy::store::{EntryRow, EntryState, GetRun, ListEntries};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);
const WINDOW: i64 = 12_000;
/// `RUMMY_TOKEN_DIVISOR` of the test server (the default).
const DIVISOR: f64 = 2.0;
/// `RUMMY_MAX_STRIKES` (the default).
const MAX_STRIKES: usize = 3;

/// The spec's token rule: ceil(UTF-16 length / divisor).
fn tokens(text: &str) -> i64 {
    (text.encode_utf16().count() as f64 / DIVISOR).ceil() as i64
}

/// Tokens of one request body the fake provider recorded.
fn request_tokens(request: &Value) -> i64 {
    request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| tokens(m["content"].as_str().unwrap_or_default()))
        .sum()
}

/// A note of about 400 tokens (800 characters).
fn note_body(group: usize, n: usize) -> String {
    let line = format!("Group {group} note {n}: the archive keeps its ledgers by season. ");
    line.repeat(800 / line.len() + 1)
        .chars()
        .take(800)
        .collect()
}

/// A turn that tidies up as a model reading its `<budget>` would: archives
/// a group of notes, their set records and the budget errors already read.
fn tidy(group: usize, extra: &str) -> String {
    format!(
        "<set path=\"known://notes/g{group}_*\" visibility=\"archived\"/>\n\
         <set path=\"log://*/set/known%3A//notes/g{group}_*\" visibility=\"archived\"/>\n\
         <set path=\"log://*/error/**\" visibility=\"archived\"/>\n\
         {extra}<update status=\"102\">group {group} filed</update>"
    )
}

/// One model turn that writes eight notes of group `group`.
fn eight_notes(group: usize, extra: &str) -> String {
    let mut reply = String::new();
    for n in 1..=8 {
        reply.push_str(&format!(
            "<set path=\"known://notes/g{group}_{n}\">{}</set>\n",
            note_body(group, n)
        ));
    }
    reply.push_str(extra);
    reply.push_str(&format!(
        "<update status=\"102\">group {group} noted</update>"
    ));
    reply
}

async fn entries(t: &TestServer, alias: &str) -> Vec<EntryRow> {
    let run = t
        .server
        .store
        .run(GetRun {
            alias: alias.to_string(),
            project_id: None,
        })
        .await
        .expect("store")
        .expect("run");
    t.server
        .store
        .run(ListEntries(run.id))
        .await
        .expect("entries")
}

fn attrs(e: &EntryRow) -> Value {
    serde_json::from_str(&e.attributes).expect("attributes JSON")
}

fn is_budget_413(e: &EntryRow) -> bool {
    e.path.starts_with("log://turn_")
        && e.path.contains("/error/")
        && attrs(e)["status"] == 413
        && e.body.starts_with("Token Budget overflow:")
}

/// Starts a run and waits for its loop to end; returns the alias and the final run/state.
async fn run_to_end(c: &mut common::WsClient, params: Value) -> (String, Value) {
    let r = c.call("set", params).await.expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    (alias, last)
}

/// The longest run of consecutive struck turns: turns with an error entry.
fn longest_streak(all: &[EntryRow], turns: i64) -> usize {
    let (mut best, mut streak) = (0, 0);
    for turn in 1..=turns {
        let prefix = format!("log://turn_{turn}/error/");
        if all.iter().any(|e| e.path.starts_with(&prefix)) {
            streak += 1;
            best = best.max(streak);
        } else {
            streak = 0;
        }
    }
    best
}

#[actix_web::test]
async fn the_window_holds_over_a_long_note_taking_run() {
    let huge = "x".repeat(1200);
    let script = vec![
        eight_notes(1, ""),
        tidy(1, ""),
        eight_notes(2, ""),
        // Reading a file the window cannot hold next to the notes: Turn Demotion.
        tidy(2, "<get path=\"guide.md\"/>\n"),
        "<update status=\"102\">reading on</update>".to_string(),
        eight_notes(3, ""),
        tidy(3, ""),
        eight_notes(4, ""),
        tidy(4, ""),
        eight_notes(5, ""),
        tidy(5, ""),
        eight_notes(6, ""),
        tidy(6, ""),
        format!("<set path=\"known://notes/huge\">{huge}</set>\n<update status=\"102\">one more</update>"),
        "<update status=\"200\">all noted</update>".to_string(),
    ];
    let t = start_server(script.into_iter().map(Reply::Content).collect()).await;
    let root = tempfile::tempdir().expect("project dir");
    let guide = "The guide explains every ledger of the archive, season by season. ".repeat(100);
    std::fs::write(root.path().join("guide.md"), &guide).expect("project file");
    let root_path = root.path().to_string_lossy().into_owned();
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "budget",
        &root_path,
    )
    .await;
    // A prompt larger than the ceiling on its own: only Prompt Demotion lets turn 1 go out.
    let prompt = "Read everything below and take notes as you go.\n".repeat(500);
    assert!(tokens(&prompt) > WINDOW * 9 / 10);
    let (alias, last) = run_to_end(
        &mut c,
        json!({"path": "run://", "body": prompt, "attributes": {"model": "fake", "mode": "act", "contextLimit": WINDOW}}),
    )
    .await;
    let all = entries(&t, &alias).await;
    assert_eq!(
        last["params"]["status"], 200,
        "the run completes: {}",
        last["params"]["telemetry"]
    );

    // No request ever exceeded the window, measured by the spec's rule.
    let requests = t.provider.requests();
    assert!(
        requests.len() >= 15,
        "every scripted turn reached the model"
    );
    for (i, r) in requests.iter().enumerate() {
        let size = request_tokens(r);
        assert!(
            size <= WINDOW,
            "request {i} was {size} tokens, over the {WINDOW}-token window"
        );
        // The <budget> table shows the very figure the check enforced.
        let user = r["messages"][1]["content"].as_str().expect("user message");
        let shown: i64 = user
            .split("<budget tokenUsage=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .expect("a <budget> table");
        assert_eq!(
            shown, size,
            "request {i}: <budget> tokenUsage is the packet's size"
        );
    }
    // run/state reports the system prompt in its own bucket, last.
    let buckets: Vec<&str> = last["params"]["telemetry"]["context_distribution"]
        .as_array()
        .expect("distribution")
        .iter()
        .map(|b| b["bucket"].as_str().expect("bucket"))
        .collect();
    let order = ["data", "logging", "unknown", "prompt", "system"];
    let ranks: Vec<usize> = buckets
        .iter()
        .map(|b| order.iter().position(|o| o == b).expect("a known bucket"))
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "bucket order {buckets:?}"
    );
    assert_eq!(buckets.last(), Some(&"system"));

    // Prompt Demotion: turn 1 went out with its prompt summarized.
    let first = requests[0]["messages"][1]["content"]
        .as_str()
        .expect("user message");
    assert!(
        first.contains("path=\"prompt://1\"") && first.contains("visibility=\"summarized\""),
        "turn 1's prompt was demoted to fit"
    );

    // Turn Demotion: 413 entries with their counts; one lists the project file.
    let overflows: Vec<&EntryRow> = all.iter().filter(|e| is_budget_413(e)).collect();
    assert!(!overflows.is_empty(), "at least one Turn Demotion");
    for e in &overflows {
        let a = attrs(e);
        assert_eq!(e.state, EntryState::Failed);
        assert!(
            a["demotedCount"].as_i64().is_some() && a["demotedTokens"].as_i64().is_some(),
            "{} {a}",
            e.path
        );
    }
    let with_file = overflows
        .iter()
        .find(|e| e.body.contains("\n- guide.md ("))
        .expect("a Turn Demotion lists the file it demoted");
    assert!(with_file
        .body
        .starts_with("Token Budget overflow: packet was "));
    let guide_entry = all
        .iter()
        .find(|e| e.path == "guide.md")
        .expect("file entry");
    assert_ne!(guide_entry.visibility, "visible", "the file was demoted");
    // The next packet says how many promotions were taken back.
    let reverted = attrs(with_file)["demotedCount"].as_i64().expect("count");
    assert!(requests.iter().any(|r| r["messages"][1]["content"]
        .as_str()
        .is_some_and(|u| u.contains(&format!("reverted=\"{reverted}\"")))));

    // The oversized note failed with overflow:N and stored nothing.
    let refused = all
        .iter()
        .find(|e| e.path.starts_with("log://") && e.path.contains("/set/known%3A//notes/huge"))
        .expect("the oversized note's log entry");
    assert_eq!(refused.state, EntryState::Failed);
    assert_eq!(
        refused.outcome.as_deref(),
        Some(format!("overflow:{}", tokens(&huge)).as_str())
    );
    assert!(!all.iter().any(|e| e.path == "known://notes/huge"));
    let notes = all
        .iter()
        .filter(|e| e.path.starts_with("known://notes/g"))
        .count();
    assert_eq!(notes, 48);

    // Strikes came and went; the streak never reached the limit.
    let turns = last["params"]["turn"].as_i64().expect("turn");
    let streak = longest_streak(&all, turns);
    assert!(
        (1..MAX_STRIKES).contains(&streak),
        "longest strike streak {streak}"
    );
}

/// Upstream reuses the last provider count after a demotion, so one
/// over-the-ceiling figure fails every later turn. Here the next turn is
/// measured afresh and goes out.
#[actix_web::test]
async fn a_turn_after_an_overflow_is_measured_afresh() {
    let t = start_server(vec![
        Reply::Content("<update status=\"200\">first</update>".into()),
        Reply::Content("<update status=\"200\">second</update>".into()),
    ])
    .await;
    let root = tempfile::tempdir().expect("project dir");
    let root_path = root.path().to_string_lossy().into_owned();
    let mut c = hello_client(t.server.local_addr.expect("listening"), "stale", &root_path).await;
    let (alias, last) = run_to_end(
        &mut c,
        json!({"path": "run://", "body": "start", "attributes": {"model": "fake", "mode": "ask", "contextLimit": WINDOW, "noRepo": true}}),
    )
    .await;
    assert_eq!(last["params"]["status"], 200);
    // The provider counted turn 1 far over the ceiling (its tokenizer, not ours).
    let mut conn = rummy::store::db::open(&t.home.path().join("rummy.db"), 0).expect("db");
    use diesel::RunQueryDsl;
    let changed = diesel::sql_query(
        "UPDATE turns SET prompt_tokens = 50000, context_tokens = 50000 \
         WHERE id = (SELECT MAX(id) FROM turns)",
    )
    .execute(&mut conn)
    .expect("update turns");
    assert_eq!(changed, 1);
    drop(conn);
    let r = c
        .call(
            "set",
            json!({"path": format!("run://{alias}"), "body": "again", "attributes": {"mode": "ask"}}),
        )
        .await
        .expect("inject");
    assert_eq!(r["alias"], alias);
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(
        last["params"]["status"], 200,
        "{}",
        last["params"]["telemetry"]
    );
    let all = entries(&t, &alias).await;
    assert!(
        !all.iter().any(is_budget_413),
        "no 413: the demoted packet was measured, not the old figure"
    );
    assert_eq!(t.provider.requests().len(), 2, "turn 2 went out");
    let prompt = all
        .iter()
        .find(|e| e.path == "prompt://2")
        .expect("prompt 2");
    assert_eq!(
        prompt.visibility, "summarized",
        "the over-figure triggered Prompt Demotion"
    );
    for r in t.provider.requests() {
        assert!(request_tokens(&r) <= WINDOW);
    }
}

/// A later turn over the ceiling with nothing of its own to give up: every
/// visible entry is summarized, the 413 lists them with their turns, and the
/// rebuilt packet goes out instead of a skipped turn that would change
/// nothing.
#[actix_web::test]
async fn a_later_turn_over_the_ceiling_demotes_run_wide_and_goes_out() {
    // Twelve notes of 500 tokens: within the entry limit, too many to keep.
    let mut first = String::new();
    for n in 1..=12 {
        let body: String = note_body(1, n).repeat(2).chars().take(1000).collect();
        first.push_str(&format!(
            "<set path=\"known://notes/g1_{n}\">{body}</set>\n"
        ));
    }
    first.push_str("<update status=\"102\">noted</update>");
    let t = start_server(vec![
        Reply::Content(first),
        Reply::Content("<update status=\"200\">done</update>".into()),
    ])
    .await;
    let root = tempfile::tempdir().expect("project dir");
    let root_path = root.path().to_string_lossy().into_owned();
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "rescue",
        &root_path,
    )
    .await;
    let (alias, last) = run_to_end(
        &mut c,
        // noProposals: the sizes here are calibrated to a system prompt
        // without the proposal tools' docs (sh, env, ask_user).
        json!({"path": "run://", "body": "note it all", "attributes": {"model": "fake", "mode": "act", "contextLimit": WINDOW, "noRepo": true, "noProposals": true}}),
    )
    .await;
    assert_eq!(
        last["params"]["status"], 200,
        "{}",
        last["params"]["telemetry"]
    );
    let all = entries(&t, &alias).await;
    let rescue = all
        .iter()
        .filter(|e| is_budget_413(e) && e.path.starts_with("log://turn_2/"))
        .find(|e| e.body.contains("\n- known://notes/g1_1 (turn 1, "))
        .expect("turn 2 demoted the notes run-wide");
    assert!(attrs(rescue)["demotedCount"].as_i64().expect("count") >= 12);
    for n in 1..=12 {
        let note = all
            .iter()
            .find(|e| e.path == format!("known://notes/g1_{n}"))
            .expect("note");
        assert_eq!(note.visibility, "summarized");
    }
    let requests = t.provider.requests();
    assert!(requests.len() >= 2, "turn 2 was sent, not skipped");
    for (i, r) in requests.iter().enumerate() {
        let size = request_tokens(r);
        assert!(size <= WINDOW * 9 / 10, "request {i} was {size} tokens");
    }
    let second = requests[1]["messages"][1]["content"]
        .as_str()
        .expect("user");
    assert!(
        second.contains("- known://notes/g1_1 (turn 1, "),
        "turn 2's own packet shows the model what was demoted"
    );
}
