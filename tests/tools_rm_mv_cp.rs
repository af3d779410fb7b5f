//! `<rm>`, `<cp>` and `<mv>` driven by model turns over a real WebSocket:
//! every scripted reply is one turn; each test checks the entries left,
//! the log entries (state, outcome, body, attributes) and what the next
//! packet shows the model.

mod common;

use common::{hello_client, test_vars, FakeProvider, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

/// A server whose fake provider plays `replies`, with extra settings.
async fn server_with(replies: Vec<Reply>, extra: &[(&str, &str)]) -> TestServer {
    let home = tempfile::tempdir().expect("temp dir");
    let provider = FakeProvider::start(replies).await;
    let mut vars = test_vars(home.path(), &provider.base_url());
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = rummy::Config::from_vars(vars).expect("test config is valid");
    let server = rummy::Server::start(config, rummy::StartOptions::default())
        .await
        .expect("server starts");
    TestServer {
        home,
        provider,
        server,
    }
}

/// What one finished run left behind.
struct Ran {
    t: TestServer,
    c: WsClient,
    alias: String,
    last: Value,
}

impl Ran {
    fn history(&self) -> &Vec<Value> {
        self.last["params"]["history"].as_array().expect("history")
    }

    /// The log entry at `path` in the final run/state history.
    fn log(&self, path: &str) -> Value {
        self.history()
            .iter()
            .find(|h| h["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("no history row {path} in {:#?}", self.history()))
    }

    fn log_attrs(&self, path: &str) -> Value {
        let raw = self.log(path)["attributes"]
            .as_str()
            .unwrap_or("{}")
            .to_string();
        serde_json::from_str(&raw).expect("attributes are JSON")
    }

    /// The packet of the `n`th model request (0-based): system and user text.
    fn packet(&self, n: usize) -> String {
        let requests = self.t.provider.requests();
        let messages = requests[n]["messages"].as_array().expect("messages");
        messages
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Entry paths (getEntries with pattern "**"), optionally with their bodies
    /// containing `filter`.
    async fn paths(&mut self, pattern: &str, filter: Option<&str>) -> Vec<String> {
        let mut params = json!({"run": self.alias, "pattern": pattern});
        if let Some(f) = filter {
            params["bodyFilter"] = json!(f);
        }
        let rows = self.c.call("getEntries", params).await.expect("entries");
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|r| r["path"].as_str().expect("path").to_string())
            .collect()
    }

    async fn entry(&mut self, path: &str) -> Option<Value> {
        let rows = self
            .c
            .call("getEntries", json!({"run": self.alias, "pattern": "**"}))
            .await
            .expect("entries");
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["path"] == path)
            .cloned()
    }
}

/// Runs an ask-mode run through the scripted turns until it ends.
async fn run(replies: &[&str], extra: &[(&str, &str)], root: Option<&str>) -> Ran {
    let replies = replies
        .iter()
        .map(|r| Reply::Content(r.to_string()))
        .collect();
    let t = server_with(replies, extra).await;
    let dir = common::project_dir("rmcp");
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "rmcp",
        root.unwrap_or(&dir),
    )
    .await;
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "entry work",
                   "attributes": {"model": "fake", "mode": "ask", "noRepo": root.is_none()}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    Ran { t, c, alias, last }
}

const SEED: &str = r#"<set path="known://plan_a">alpha plan</set><set path="known://plan_b">beta plan about auth</set><set path="known://keep">kept note about auth</set><update status="102">noted</update>"#;
const DONE: &str = r#"<update status="200">done</update>"#;

fn tokens_of(body: &str) -> i64 {
    let config = rummy::Config::from_vars(test_vars(std::path::Path::new("/tmp"), "http://x"))
        .expect("config");
    rummy::tokens::count_tokens(body, config.token_divisor)
}

#[actix_web::test]
async fn rm_removes_one_entry_and_a_body_filtered_glob() {
    let mut r = run(
        &[
            SEED,
            r#"<rm path="known://keep"/><rm path="known://plan_*">auth</rm><update status="102">removed</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(r.last["params"]["status"], 200);
    assert_eq!(r.paths("known://**", None).await, vec!["known://plan_a"]);

    let exact = r.log("log://turn_2/rm/known%3A//keep");
    assert_eq!(exact["state"], "resolved");
    assert_eq!(exact["body"], "known://keep");
    assert_eq!(
        r.log_attrs("log://turn_2/rm/known%3A//keep")["path"],
        "known://keep"
    );
    let glob = r.log("log://turn_2/rm/known%3A//plan_*");
    assert_eq!(glob["state"], "resolved");
    assert_eq!(
        glob["body"], "known://plan_b",
        "the tag text filtered the glob"
    );

    let next = r.packet(2);
    assert!(next.contains("# rm known://keep\nknown://keep"), "{next}");
    assert!(
        next.contains("# rm known://plan_*\nknown://plan_b"),
        "{next}"
    );
    assert!(!next.contains("<known path=\"known://keep\""), "{next}");
}

#[actix_web::test]
async fn rm_body_attribute_and_tag_path_forms() {
    let mut r = run(
        &[
            SEED,
            r#"<rm path="known://*" body="beta"/><rm>known://plan_a</rm><update status="102">removed</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(r.paths("known://**", None).await, vec!["known://keep"]);
    assert_eq!(
        r.log("log://turn_2/rm/known%3A//*")["body"],
        "known://plan_b"
    );
    assert_eq!(
        r.log("log://turn_2/rm/known%3A//plan_a")["body"],
        "known://plan_a"
    );
}

#[actix_web::test]
async fn rm_preview_lists_and_removes_nothing() {
    let mut r = run(
        &[
            SEED,
            r#"<rm path="known://plan_*" preview/><update status="102">looked</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.paths("known://**", None).await,
        vec!["known://keep", "known://plan_a", "known://plan_b"]
    );
    let (a, b) = (tokens_of("alpha plan"), tokens_of("beta plan about auth"));
    let expected = format!(
        "PREVIEW rm path=\"known://plan_*\": 2 matched ({} tokens)\nknown://plan_a ({a})\nknown://plan_b ({b})",
        a + b
    );
    let log = r.log("log://turn_2/rm/known%3A//plan_*");
    assert_eq!(log["state"], "resolved");
    assert_eq!(log["body"], expected);
    assert!(r.packet(2).contains(&expected));
}

#[actix_web::test]
async fn rm_of_nothing_fails_not_found_and_a_missing_path_fails_validation() {
    let r = run(
        &[
            SEED,
            r#"<update status="102">first</update><rm path="known://none_*"/>"#,
            r#"<update status="102">second</update><rm path="known://gone"/>"#,
            r#"<update status="102">third</update><rm/>"#,
            DONE,
        ],
        // Each failure is a strike; three in a row would abandon the run.
        &[("RUMMY_MAX_STRIKES", "10")],
        None,
    )
    .await;
    let glob = r.log("log://turn_2/rm/known%3A//none_*");
    assert_eq!(glob["state"], "failed");
    assert_eq!(glob["outcome"], "not_found");
    assert_eq!(glob["body"], "");
    assert_eq!(
        r.log_attrs("log://turn_2/rm/known%3A//none_*"),
        json!({"path": "known://none_*", "error": "known://none_* not found", "action": "rm"})
    );
    let exact = r.log("log://turn_3/rm/known%3A//gone");
    assert_eq!(exact["outcome"], "not_found");
    let missing = r.log("log://turn_4/rm/");
    assert_eq!(missing["state"], "failed");
    assert_eq!(missing["outcome"], "validation");
    assert_eq!(r.log_attrs("log://turn_4/rm/")["error"], "path is required");
    // The model reads why next turn.
    assert!(r
        .packet(2)
        .contains("# rm known://none_*\nknown://none_* not found"));
    assert!(r.packet(4).contains("path is required"));
}

#[actix_web::test]
async fn rm_of_a_file_is_refused_in_ask_mode_and_changes_nothing() {
    let root = tempfile::tempdir().expect("root");
    std::fs::write(root.path().join("notes.md"), "some notes\n").expect("file");
    let root_str = root.path().to_string_lossy().into_owned();
    let mut r = run(
        &[
            r#"<update status="102">first</update><rm path="notes.md"/>"#,
            DONE,
        ],
        &[],
        Some(&root_str),
    )
    .await;
    // The ask-mode policy refuses it before RECORD: an error, no log entry.
    assert_eq!(
        r.log("log://turn_1/error/Rejected%20file%20rm%20of%20notes.md%20in%20ask%20mode")["body"],
        "Rejected file rm of notes.md in ask mode"
    );
    assert!(r
        .history()
        .iter()
        .all(|h| h["path"] != "log://turn_1/rm/notes.md"));
    assert!(r.entry("notes.md").await.is_some(), "the file entry stays");
    assert!(root.path().join("notes.md").exists());
}

#[actix_web::test]
async fn rm_refused_by_scheme_permission_removes_nothing() {
    let mut r = run(
        &[
            r#"<rm path="prompt://*"/><update status="102">tried</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    let log = r.log("log://turn_1/rm/prompt%3A//*");
    assert_eq!(log["state"], "failed");
    assert_eq!(log["outcome"], "permission");
    assert!(!r.paths("prompt://*", None).await.is_empty());
}

#[actix_web::test]
async fn cp_copies_one_entry_and_warns_on_overwrite() {
    let mut r = run(
        &[
            SEED,
            r#"<cp path="known://plan_a">known://copy</cp><cp path="known://plan_b" to="known://keep"/><update status="102">copied</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.paths("known://**", Some("alpha plan")).await,
        vec!["known://copy", "known://plan_a"]
    );
    assert_eq!(
        r.paths("known://keep", Some("beta plan about auth")).await,
        vec!["known://keep"]
    );
    let log = r.log("log://turn_2/cp/known%3A//plan_a");
    assert_eq!(log["state"], "resolved");
    assert_eq!(log["body"], "known://plan_a known://copy");
    assert_eq!(
        r.log_attrs("log://turn_2/cp/known%3A//plan_a"),
        json!({"from": "known://plan_a", "to": "known://copy", "isMove": false,
               "warning": null, "action": "cp"})
    );
    assert_eq!(
        r.log_attrs("log://turn_2/cp/known%3A//plan_b")["warning"],
        "Overwrote existing entry at known://keep"
    );
    let next = r.packet(2);
    assert!(next.contains("# cp known://plan_a known://copy<"), "{next}");
    assert!(next.contains(">alpha plan</known>"), "{next}");
}

#[actix_web::test]
async fn cp_glob_appends_the_rest_after_the_literal_prefix() {
    let mut r = run(
        &[
            SEED,
            r#"<cp path="known://plan_*">known://archive/</cp><cp path="known://plan_*" visibility="archived">known://archive_</cp><update status="102">copied</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.paths("known://archive/**", None).await,
        vec!["known://archive/a", "known://archive/b"]
    );
    assert_eq!(
        r.paths("known://archive/a", Some("alpha plan")).await.len(),
        1
    );
    let log = r.log("log://turn_2/cp/known%3A//plan_*");
    assert_eq!(
        log["body"],
        "known://plan_a known://archive/a\nknown://plan_b known://archive/b"
    );
    // Same tool and target in one turn: the second gets its own suffixed path.
    let second = r
        .history()
        .iter()
        .find(|h| {
            h["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("log://turn_2/cp/known%3A//plan_*_"))
        })
        .cloned()
        .expect("second cp logged");
    assert_eq!(
        second["body"],
        "known://plan_a known://archive_a\nknown://plan_b known://archive_b"
    );
    let archived = r.entry("known://archive_b").await.expect("copied");
    assert_eq!(archived["visibility"], "archived");
    let next = r.packet(2);
    assert!(
        next.contains("# cp known://plan_* known://archive/\nknown://plan_a known://archive/a"),
        "{next}"
    );
}

#[actix_web::test]
async fn cp_glob_with_a_body_filter_copies_only_the_matching_bodies() {
    let mut r = run(
        &[
            SEED,
            r#"<cp path="known://*" body="auth">known://auth/</cp><update status="102">copied</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.paths("known://auth/**", None).await,
        vec!["known://auth/keep", "known://auth/plan_b"]
    );
    assert_eq!(
        r.log("log://turn_2/cp/known%3A//*")["body"],
        "known://keep known://auth/keep\nknown://plan_b known://auth/plan_b"
    );
}

#[actix_web::test]
async fn cp_preview_lists_destinations_and_copies_nothing() {
    let mut r = run(
        &[
            SEED,
            r#"<cp path="known://plan_*" preview>known://old/</cp><update status="102">looked</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert!(r.paths("known://old/**", None).await.is_empty());
    let (a, b) = (tokens_of("alpha plan"), tokens_of("beta plan about auth"));
    assert_eq!(
        r.log("log://turn_2/cp/known%3A//plan_*")["body"],
        format!(
            "PREVIEW cp path=\"known://plan_*\": 2 matched ({} tokens)\nknown://plan_a → known://old/a ({a})\nknown://plan_b → known://old/b ({b})",
            a + b
        )
    );
}

#[actix_web::test]
async fn cp_failures_are_logged_and_change_nothing() {
    let mut r = run(
        &[
            SEED,
            r#"<update status="102">1</update><cp path="known://missing">known://x</cp>"#,
            r#"<update status="102">2</update><cp path="known://none_*">known://x/</cp>"#,
            r#"<update status="102">3</update><cp path="known://plan_a">known://plan_a</cp>"#,
            r#"<update status="102">4</update><cp>known://plan_a</cp>"#,
            r#"<update status="102">5</update><cp path="known://plan_a"/>"#,
            r#"<update status="102">6</update><cp path="known://plan_a">prompt://9</cp>"#,
            DONE,
        ],
        // Each failure is a strike; three in a row would abandon the run.
        &[("RUMMY_MAX_STRIKES", "10")],
        None,
    )
    .await;
    let missing = r.log("log://turn_2/cp/known%3A//missing");
    assert_eq!(
        (missing["state"].clone(), missing["outcome"].clone()),
        (json!("failed"), json!("not_found"))
    );
    assert_eq!(
        r.log_attrs("log://turn_2/cp/known%3A//missing")["error"],
        "known://missing not found"
    );
    assert_eq!(
        r.log("log://turn_3/cp/known%3A//none_*")["outcome"],
        "not_found"
    );
    // (A copy to a file is a proposal: tests/proposals.rs.)
    let same = r.log("log://turn_4/cp/known%3A//plan_a");
    assert_eq!(same["outcome"], "validation");
    assert!(r.entry("notes.md").await.is_none());
    let no_path = r.log("log://turn_5/cp/");
    assert_eq!(no_path["outcome"], "validation");
    assert_eq!(r.log_attrs("log://turn_5/cp/")["error"], "path is required");
    let no_dest = r.log("log://turn_6/cp/known%3A//plan_a");
    assert_eq!(no_dest["outcome"], "validation");
    let refused = r.log("log://turn_7/cp/known%3A//plan_a");
    assert_eq!(refused["outcome"], "permission");
    assert!(r.paths("known://x**", None).await.is_empty());
    assert!(r.paths("prompt://9", None).await.is_empty());
    assert!(r
        .packet(2)
        .contains("# cp known://missing known://x\nknown://missing not found"));
}

#[actix_web::test]
async fn cp_into_known_goes_through_the_size_gate() {
    let mut r = run(
        &[
            r#"<set path="unknown://big">one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen</set><set path="unknown://small">tiny</set><update status="102">noted</update>"#,
            r#"<update status="102">1</update><cp path="unknown://big">known://big</cp>"#,
            r#"<cp path="unknown://small">known://small</cp><update status="102">2</update>"#,
            DONE,
        ],
        &[("RUMMY_MAX_ENTRY_TOKENS", "5")],
        None,
    )
    .await;
    let big = tokens_of(
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen",
    );
    assert!(big > 5);
    let log = r.log("log://turn_2/cp/unknown%3A//big");
    assert_eq!(log["state"], "failed");
    assert_eq!(log["outcome"], format!("overflow:{big}"));
    assert!(r.log_attrs("log://turn_2/cp/unknown%3A//big")["error"]
        .as_str()
        .expect("error")
        .starts_with(&format!("Entry too large ({big} tokens, max 5).")));
    assert!(r.entry("known://big").await.is_none(), "nothing stored");
    assert!(
        r.entry("known://small").await.is_some(),
        "a small copy passes"
    );
}

#[actix_web::test]
async fn mv_moves_one_entry_and_a_glob() {
    let mut r = run(
        &[
            SEED,
            r#"<mv path="known://keep">known://kept</mv><mv path="known://plan_*">known://done/</mv><update status="102">moved</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.paths("known://**", None).await,
        vec!["known://done/a", "known://done/b", "known://kept"]
    );
    assert_eq!(r.paths("known://kept", Some("kept note")).await.len(), 1);
    let log = r.log("log://turn_2/mv/known%3A//keep");
    assert_eq!(log["state"], "resolved");
    assert_eq!(log["body"], "known://keep known://kept");
    assert_eq!(
        r.log_attrs("log://turn_2/mv/known%3A//keep"),
        json!({"from": "known://keep", "to": "known://kept", "isMove": true,
               "warning": null, "action": "mv"})
    );
    assert_eq!(
        r.log("log://turn_2/mv/known%3A//plan_*")["body"],
        "known://plan_a known://done/a\nknown://plan_b known://done/b"
    );
    let next = r.packet(2);
    assert!(next.contains("# mv known://keep known://kept<"), "{next}");
    assert!(!next.contains("<known path=\"known://keep\""), "{next}");
}

#[actix_web::test]
async fn mv_keeps_the_attributes_within_a_scheme_only() {
    let mut r = run(
        &[
            r#"<set path="known://s" summary="short">a longer body</set><set path="unknown://q" summary="ask">open question</set><update status="102">noted</update>"#,
            r#"<mv path="known://s">known://t</mv><mv path="unknown://q">known://q</mv><update status="102">moved</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    let moved = r.entry("known://t").await.expect("moved");
    assert_eq!(moved["attributes"]["summary"], "short");
    assert_eq!(moved["visibility"], "summarized", "the scheme default");
    let crossed = r.entry("known://q").await.expect("moved");
    assert_eq!(crossed["attributes"], json!({}));
    assert!(r.entry("unknown://q").await.is_none());
}

#[actix_web::test]
async fn mv_of_overlapping_glob_matches_moves_the_old_bodies() {
    let mut r = run(
        &[
            r#"<set path="known://a">first</set><set path="known://ab">second</set><update status="102">noted</update>"#,
            r#"<mv path="known://a*">known://ab</mv><update status="102">moved</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    // known://a → known://ab, known://ab → known://abb: each takes the body
    // its source had before the move; a source that is also a destination stays.
    assert_eq!(r.paths("known://ab", Some("first")).await.len(), 1);
    assert_eq!(r.paths("known://abb", Some("second")).await.len(), 1);
    assert!(r.entry("known://a").await.is_none());
    assert_eq!(
        r.log_attrs("log://turn_2/mv/known%3A//a*")["warning"],
        "Overwrote existing entry at known://ab"
    );
}

#[actix_web::test]
async fn mv_with_visibility_and_no_destination_changes_visibility_in_place() {
    let mut r = run(
        &[
            SEED,
            r#"<mv path="known://plan_*" visibility="archived"/><mv path="known://none_*" visibility="visible"/><update status="102">moved</update>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    for p in ["known://plan_a", "known://plan_b"] {
        assert_eq!(r.entry(p).await.expect("kept")["visibility"], "archived");
    }
    assert_eq!(
        r.entry("known://keep").await.expect("kept")["visibility"],
        "visible"
    );
    let log = r.log("log://turn_2/mv/known%3A//plan_*");
    assert_eq!(log["state"], "resolved");
    assert_eq!(
        log["body"],
        "known://plan_a, known://plan_b set to archived"
    );
    assert_eq!(
        r.entry("log://turn_2/mv/known%3A//plan_*")
            .await
            .expect("log")["visibility"],
        "archived"
    );
    let none = r.log("log://turn_2/mv/known%3A//none_*");
    assert_eq!(none["state"], "failed");
    assert_eq!(none["outcome"], "not_found");
    let next = r.packet(2);
    assert!(!next.contains("<known path=\"known://plan_a\""), "{next}");
    assert!(next.contains("known://none_* not found"), "{next}");
}

#[actix_web::test]
async fn mv_preview_and_bad_visibility_change_nothing() {
    let mut r = run(
        &[
            SEED,
            r#"<mv path="known://plan_*" preview>known://x/</mv><update status="102">1</update>"#,
            r#"<update status="102">2</update><mv path="known://plan_a" visibility="hidden">known://y</mv>"#,
            r#"<update status="102">3</update><mv path="notes.md">known://z</mv>"#,
            DONE,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.paths("known://**", None).await,
        vec!["known://keep", "known://plan_a", "known://plan_b"]
    );
    let preview = r.log("log://turn_2/mv/known%3A//plan_*");
    assert!(preview["body"]
        .as_str()
        .expect("body")
        .starts_with("PREVIEW mv path=\"known://plan_*\": 2 matched ("));
    let bad = r.log("log://turn_3/mv/known%3A//plan_a");
    assert_eq!(bad["outcome"], "validation");
    assert!(r.log_attrs("log://turn_3/mv/known%3A//plan_a")["error"]
        .as_str()
        .expect("error")
        .starts_with("Invalid visibility \"hidden\""));
    // Moving a file away is refused in ask mode (beyond upstream).
    assert!(r
        .history()
        .iter()
        .all(|h| h["path"] != "log://turn_4/mv/notes.md"));
    assert!(r.history().iter().any(|h| {
        h["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("log://turn_4/error/"))
            && h["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("Rejected mv of file notes.md in ask mode"))
    }));
}
