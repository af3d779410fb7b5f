//! Proposals over a real WebSocket: a model's file writes, edits, removals,
//! moves and questions wait for a decision from any client of the project;
//! accepting changes the disk, rejecting aborts the rest of the turn, and
//! cancelling the run frees the wait at once.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const DONE: &str = r#"<update status="200">done</update>"#;

struct Setup {
    t: TestServer,
    root: tempfile::TempDir,
    /// Started the run.
    a: WsClient,
    /// A second client of the same project.
    b: WsClient,
    alias: String,
}

impl Setup {
    fn file(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.root.path().join(rel)).ok()
    }

    /// The next proposal announced to client `b`.
    async fn proposal(&mut self) -> Value {
        let alias = self.alias.clone();
        let n = self
            .b
            .wait_notification("run/proposal", LONG, |n| n["params"]["run"] == alias)
            .await;
        let proposed = n["params"]["proposed"].as_array().expect("proposed");
        assert_eq!(proposed.len(), 1, "one proposal at a time: {n}");
        proposed[0].clone()
    }

    async fn resolve(&mut self, path: &Value, state: &str, body: Option<&str>) -> Value {
        let mut params = json!({"run": self.alias, "path": path, "state": state});
        if let Some(b) = body {
            params["body"] = json!(b);
        }
        self.b
            .call("set", params)
            .await
            .expect("resolution accepted")
    }

    async fn end(&mut self) -> Value {
        let alias = self.alias.clone();
        self.a
            .wait_notification("run/state", LONG, |n| {
                n["params"]["run"] == alias && n["params"]["status"] != 102
            })
            .await
    }

    async fn entry(&mut self, path: &str) -> Option<Value> {
        let rows = self
            .a
            .call("getEntries", json!({"run": self.alias, "pattern": "**"}))
            .await
            .expect("entries");
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["path"] == path)
            .cloned()
    }

    async fn status(&mut self) -> Value {
        let runs = self.a.call("getRuns", json!({})).await.expect("runs");
        runs.as_array()
            .expect("runs")
            .iter()
            .find(|r| r["run"] == self.alias.as_str())
            .map(|r| r["status"].clone())
            .expect("the run is listed")
    }
}

/// An act run in a temp project holding `files`, with two clients.
async fn setup(replies: &[&str], files: &[(&str, &str)]) -> Setup {
    let t = start_server(
        replies
            .iter()
            .map(|r| Reply::Content(r.to_string()))
            .collect(),
    )
    .await;
    let root = tempfile::tempdir().expect("root");
    for (rel, body) in files {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        std::fs::write(p, body).expect("file");
    }
    let root_str = root.path().to_string_lossy().into_owned();
    let addr = t.server.local_addr.expect("listening");
    let mut a = hello_client(addr, "props", &root_str).await;
    let b = hello_client(addr, "props", &root_str).await;
    let r = a
        .call(
            "set",
            json!({"path": "run://", "body": "change files",
                   "attributes": {"model": "fake", "mode": "act"}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    Setup {
        t,
        root,
        a,
        b,
        alias,
    }
}

fn attrs_of(proposal: &Value) -> Value {
    serde_json::from_str(proposal["attributes"].as_str().expect("attributes string"))
        .expect("attributes are JSON")
}

#[actix_web::test]
async fn a_second_client_accepts_a_new_file_and_the_run_completes() {
    let literal = "price: $& and $$ stay\n=======\nliteral\n";
    let mut s = setup(
        &[
            &format!(
                r#"<set path="src/new.txt">{literal}</set><update status="102">made</update>"#
            ),
            DONE,
        ],
        &[],
    )
    .await;
    let p = s.proposal().await;
    assert_eq!(p["path"], "log://turn_1/set/src/new.txt");
    assert_eq!(p["turn"], 1);
    let attrs = attrs_of(&p);
    assert_eq!(attrs["path"], "src/new.txt");
    assert!(attrs["patch"]
        .as_str()
        .expect("patch")
        .contains("+price: $& and $$ stay"));
    assert!(attrs["merge"]
        .as_str()
        .expect("merge")
        .starts_with("<<<<<<< SEARCH\n=======\n"));
    assert_eq!(s.status().await, 202, "the run shows 202 while it waits");
    assert!(
        s.file("src/new.txt").is_none(),
        "nothing is written before acceptance"
    );

    let answer = s.resolve(&p["path"], "resolved", None).await;
    assert_eq!(answer, json!({"run": s.alias, "status": 102}));
    let alias = s.alias.clone();
    let told =
        s.a.wait_notification("run/resolved", LONG, |n| n["params"]["run"] == alias)
            .await;
    assert_eq!(told["params"]["path"], "log://turn_1/set/src/new.txt");
    assert_eq!(told["params"]["state"], "resolved");
    let end = s.end().await;
    assert_eq!(end["params"]["status"], 200);
    assert_eq!(s.file("src/new.txt").as_deref(), Some(literal.trim()));
    let file = s.entry("src/new.txt").await.expect("file entry");
    assert_eq!(file["state"], "resolved");
    assert_eq!(file["visibility"], "visible");
    let log = s.entry("log://turn_1/set/src/new.txt").await.expect("log");
    assert_eq!(log["state"], "resolved");
    let rules = s.a.call("getConstraints", json!({})).await.expect("rules");
    assert!(
        rules
            .as_array()
            .expect("rules")
            .contains(&json!({"pattern": "src/new.txt", "visibility": "active"})),
        "{rules}"
    );
    // The next packet shows the model the file it made.
    let requests = s.t.provider.requests();
    assert!(requests[1].to_string().contains("price: $& and $$ stay"));
}

#[actix_web::test]
async fn a_rejected_rewrite_leaves_the_file_and_aborts_the_rest_of_the_turn() {
    let mut s = setup(
        &[
            r#"<set path="a.txt">rewritten</set><set path="known://after">x</set><update status="102">u</update>"#,
            DONE,
        ],
        &[("a.txt", "original\n")],
    )
    .await;
    let p = s.proposal().await;
    let answer = s
        .resolve(&p["path"], "cancelled", Some("not like that"))
        .await;
    assert_eq!(answer["status"], 102);
    assert_eq!(s.end().await["params"]["status"], 200);
    assert_eq!(s.file("a.txt").as_deref(), Some("original\n"));
    let log = s.entry("log://turn_1/set/a.txt").await.expect("log");
    assert_eq!(
        (log["state"].clone(), log["outcome"].clone()),
        (json!("failed"), json!("permission"))
    );
    assert_eq!(log["attributes"]["resolution"], "rejected");
    let after = s
        .entry("log://turn_1/set/known%3A//after")
        .await
        .expect("the next command is logged");
    assert_eq!(after["outcome"], "aborted");
    assert!(s.entry("known://after").await.is_none());
    // The rejection is a 403 error the model reads.
    let errors: Vec<Value> =
        s.a.call(
            "getEntries",
            json!({"run": s.alias, "pattern": "log://turn_1/error/**"}),
        )
        .await
        .expect("errors")
        .as_array()
        .expect("rows")
        .clone();
    assert!(
        errors.iter().any(|e| e["outcome"] == "status:403"),
        "{errors:?}"
    );
}

#[actix_web::test]
async fn an_errored_proposal_fails_with_outcome_error() {
    let mut s = setup(
        &[
            r#"<set path="a.txt">new</set><update status="102">u</update>"#,
            DONE,
        ],
        &[("a.txt", "old")],
    )
    .await;
    let p = s.proposal().await;
    s.resolve(&p["path"], "failed", Some("disk full")).await;
    assert_eq!(s.end().await["params"]["status"], 200);
    let log = s.entry("log://turn_1/set/a.txt").await.expect("log");
    assert_eq!(
        (log["state"].clone(), log["outcome"].clone()),
        (json!("failed"), json!("error"))
    );
    assert_eq!(s.file("a.txt").as_deref(), Some("old"));
}

#[actix_web::test]
async fn accepting_a_readonly_file_is_vetoed() {
    let mut s = setup(
        &[
            r#"<set path="locked.txt">new</set><update status="102">u</update>"#,
            DONE,
        ],
        &[("locked.txt", "keep me")],
    )
    .await;
    s.b.call(
        "file/constraint",
        json!({"pattern": "locked.txt", "visibility": "readonly"}),
    )
    .await
    .expect("constraint");
    let p = s.proposal().await;
    let answer = s.resolve(&p["path"], "resolved", None).await;
    assert_eq!(
        answer,
        json!({"ok": true, "state": "failed", "outcome": "readonly"})
    );
    assert_eq!(s.end().await["params"]["status"], 200);
    assert_eq!(s.file("locked.txt").as_deref(), Some("keep me"));
    let log = s.entry("log://turn_1/set/locked.txt").await.expect("log");
    assert_eq!(log["outcome"], "readonly");
}

#[actix_web::test]
async fn every_edit_form_is_applied_to_the_file_on_disk() {
    let original = "alpha\nbeta\ngamma\ndelta\n";
    let mut s = setup(
        &[
            "<set path=\"f.txt\"><<<<<<< SEARCH\nalpha\n=======\nALPHA\n>>>>>>> REPLACE</set><update status=\"102\">1</update>",
            "<set path=\"f.txt\">s/beta/BETA/</set><update status=\"102\">2</update>",
            "<set path=\"f.txt\" search=\"gamma\" replace=\"GAMMA\"/><update status=\"102\">3</update>",
            "<set path=\"f.txt\">@@ -3,2 +3,2 @@\n GAMMA\n-delta\n+DELTA</set><update status=\"102\">4</update>",
            DONE,
        ],
        &[("f.txt", original)],
    )
    .await;
    let expected = [
        "ALPHA\nbeta\ngamma\ndelta\n",
        "ALPHA\nBETA\ngamma\ndelta\n",
        "ALPHA\nBETA\nGAMMA\ndelta\n",
        "ALPHA\nBETA\nGAMMA\nDELTA\n",
    ];
    for (turn, want) in expected.iter().enumerate() {
        let p = s.proposal().await;
        assert_eq!(p["path"], "set://f.txt", "turn {}", turn + 1);
        assert_eq!(p["body"], *want, "the proposal holds the whole new text");
        assert!(attrs_of(&p)["patch"]
            .as_str()
            .expect("patch")
            .contains("@@"));
        s.resolve(&p["path"], "resolved", None).await;
        let log = format!("log://turn_{}/set/f.txt", turn + 1);
        let logged = s.entry(&log).await.expect("edit log");
        assert_eq!(logged["state"], "resolved");
        // The file is written before the turn goes on.
        let alias = s.alias.clone();
        s.b.wait_notification("run/resolved", LONG, |n| n["params"]["run"] == alias)
            .await;
        assert_eq!(s.file("f.txt").as_deref(), Some(*want), "turn {}", turn + 1);
    }
    assert_eq!(s.end().await["params"]["status"], 200);
    let file = s.entry("f.txt").await.expect("file entry");
    assert_eq!(file["state"], "resolved");
}

#[actix_web::test]
async fn an_accepted_rm_unlinks_the_file_and_mv_moves_one() {
    let mut s = setup(
        &[
            r#"<rm path="gone.txt"/><update status="102">1</update>"#,
            r#"<mv path="old/name.txt">new/name.txt</mv><update status="102">2</update>"#,
            DONE,
        ],
        &[("gone.txt", "bye"), ("old/name.txt", "moving")],
    )
    .await;
    let p = s.proposal().await;
    assert_eq!(p["path"], "log://turn_1/rm/gone.txt");
    assert_eq!(p["body"], "gone.txt");
    assert!(s.file("gone.txt").is_some());
    s.resolve(&p["path"], "resolved", None).await;
    let p = s.proposal().await;
    assert_eq!(p["path"], "log://turn_2/mv/old/name.txt");
    assert_eq!(p["body"], "old/name.txt new/name.txt");
    assert_eq!(attrs_of(&p)["isMove"], true);
    s.resolve(&p["path"], "resolved", None).await;
    assert_eq!(s.end().await["params"]["status"], 200);
    assert!(s.file("gone.txt").is_none());
    assert!(s.entry("gone.txt").await.is_none());
    assert!(s.file("old/name.txt").is_none());
    assert_eq!(s.file("new/name.txt").as_deref(), Some("moving"));
    assert!(s.entry("old/name.txt").await.is_none());
    assert_eq!(
        s.entry("new/name.txt").await.expect("moved entry")["state"],
        "resolved"
    );
}

#[actix_web::test]
async fn a_rejected_rm_keeps_the_file_and_a_copy_to_a_file_writes_it() {
    let mut s = setup(
        &[
            r#"<rm path="notes.md"/><update status="102">1</update>"#,
            r#"<set path="known://plan">the plan</set><cp path="known://plan">docs/plan.md</cp><update status="102">2</update>"#,
            DONE,
        ],
        &[("notes.md", "some notes\n")],
    )
    .await;
    let p = s.proposal().await;
    assert_eq!(p["path"], "log://turn_1/rm/notes.md");
    s.resolve(&p["path"], "cancelled", None).await;
    let p = s.proposal().await;
    assert_eq!(p["path"], "log://turn_2/cp/known%3A//plan");
    assert_eq!(p["body"], "known://plan docs/plan.md");
    s.resolve(&p["path"], "resolved", None).await;
    assert_eq!(s.end().await["params"]["status"], 200);
    assert_eq!(s.file("notes.md").as_deref(), Some("some notes\n"));
    assert!(s.entry("notes.md").await.is_some(), "the file entry stays");
    let log = s.entry("log://turn_1/rm/notes.md").await.expect("log");
    assert_eq!(log["outcome"], "permission");
    assert_eq!(s.file("docs/plan.md").as_deref(), Some("the plan"));
    assert!(
        s.entry("known://plan").await.is_some(),
        "a copy keeps its source"
    );
}

#[actix_web::test]
async fn a_glob_rm_proposes_each_file_in_turn_and_a_rejection_cancels_the_rest() {
    let mut s = setup(
        &[
            r#"<rm path="*.log"/><update status="102">1</update>"#,
            r#"<rm path="*.log"/><update status="102">2</update>"#,
            DONE,
        ],
        &[
            ("a.log", "A"),
            ("b.log", "B"),
            ("c.log", "C"),
            ("keep.txt", "K"),
        ],
    )
    .await;
    let first = s.proposal().await;
    assert_eq!(first["path"], "log://turn_1/rm/a.log");
    s.resolve(&first["path"], "resolved", None).await;
    let second = s.proposal().await;
    assert_eq!(second["path"], "log://turn_1/rm/b.log");
    assert!(
        s.file("a.log").is_none(),
        "the first removal is applied before the next is asked"
    );
    s.resolve(&second["path"], "cancelled", None).await;
    // c.log is never asked about: the rejection cancelled it.
    let next = s.proposal().await;
    assert_eq!(next["path"], "log://turn_2/rm/b.log");
    let c = s
        .entry("log://turn_1/rm/c.log")
        .await
        .expect("c's proposal");
    assert_eq!(
        (c["state"].clone(), c["outcome"].clone()),
        (json!("cancelled"), json!("aborted"))
    );
    s.resolve(&next["path"], "resolved", None).await;
    let last = s.proposal().await;
    assert_eq!(last["path"], "log://turn_2/rm/c.log");
    s.resolve(&last["path"], "resolved", None).await;
    assert_eq!(s.end().await["params"]["status"], 200);
    for gone in ["a.log", "b.log", "c.log"] {
        assert!(s.file(gone).is_none(), "{gone}");
    }
    assert_eq!(s.file("keep.txt").as_deref(), Some("K"));
}

#[actix_web::test]
async fn ask_user_is_answered_by_a_client() {
    let mut s = setup(
        &[
            r#"<ask_user question="Which colour?">red; dark blue</ask_user><update status="102">asked</update>"#,
            DONE,
        ],
        &[],
    )
    .await;
    let p = s.proposal().await;
    assert_eq!(p["path"], "log://turn_1/ask_user/Which%20colour%3F");
    assert_eq!(p["body"], "Which colour?");
    assert_eq!(attrs_of(&p)["options"], json!(["red", "dark blue"]));
    s.resolve(&p["path"], "resolved", Some("dark blue")).await;
    assert_eq!(s.end().await["params"]["status"], 200);
    let entry = s
        .entry(p["path"].as_str().expect("path"))
        .await
        .expect("entry");
    assert_eq!(entry["state"], "resolved");
    assert_eq!(entry["attributes"]["answer"], "dark blue");
    let requests = s.t.provider.requests();
    assert!(
        requests[1].to_string().contains("Answer: dark blue"),
        "the model reads the answer next turn"
    );
}

#[actix_web::test]
async fn cancelling_a_waiting_run_frees_it_and_cancels_the_proposal() {
    let mut s = setup(
        &[
            r#"<set path="a.txt">new</set><update status="102">u</update>"#,
            DONE,
        ],
        &[("a.txt", "old")],
    )
    .await;
    let p = s.proposal().await;
    let started = std::time::Instant::now();
    s.b.call(
        "set",
        json!({"path": format!("run://{}", s.alias), "state": "cancelled"}),
    )
    .await
    .expect("cancel");
    let end = s.end().await;
    assert_eq!(end["params"]["status"], 499);
    assert!(started.elapsed() < Duration::from_secs(5));
    let alias = s.alias.clone();
    let told =
        s.a.wait_notification("run/resolved", LONG, |n| n["params"]["run"] == alias)
            .await;
    assert_eq!(told["params"]["state"], "cancelled");
    let log = s.entry("log://turn_1/set/a.txt").await.expect("log");
    assert_eq!(log["state"], "cancelled");
    assert_eq!(s.file("a.txt").as_deref(), Some("old"));
    // Too late to resolve now.
    let late =
        s.b.call_unchecked(
            "set",
            json!({"run": s.alias, "path": p["path"], "state": "resolved"}),
        )
        .await
        .expect_err("refused");
    assert_eq!(late["code"], -32602);
    assert_eq!(s.status().await, 499);
}

#[actix_web::test]
async fn settled_and_foreign_proposals_are_refused_and_ordinary_state_writes_stay() {
    let mut s = setup(
        &[
            r#"<set path="known://note">n</set><set path="a.txt">new</set><update status="102">u</update>"#,
            DONE,
        ],
        &[("a.txt", "old")],
    )
    .await;
    let p = s.proposal().await;
    // A client of another project cannot reach the run.
    let addr = s.t.server.local_addr.expect("listening");
    let other_root = tempfile::tempdir().expect("root");
    let mut stranger = hello_client(addr, "elsewhere", &other_root.path().to_string_lossy()).await;
    let refused = stranger
        .call_unchecked(
            "set",
            json!({"run": s.alias, "path": p["path"], "state": "resolved"}),
        )
        .await
        .expect_err("not found");
    assert_eq!(refused["code"], -32602);
    assert_eq!(
        s.entry("log://turn_1/set/a.txt").await.expect("log")["state"],
        "proposed"
    );

    s.resolve(&p["path"], "resolved", None).await;
    assert_eq!(s.end().await["params"]["status"], 200);
    assert_eq!(s.file("a.txt").as_deref(), Some("new"));
    let again =
        s.b.call_unchecked(
            "set",
            json!({"run": s.alias, "path": p["path"], "state": "cancelled"}),
        )
        .await
        .expect_err("already settled");
    assert_eq!(again["code"], -32602);
    assert!(again["message"]
        .as_str()
        .expect("message")
        .contains("already settled"));
    assert_eq!(
        s.entry("log://turn_1/set/a.txt").await.expect("log")["state"],
        "resolved"
    );
    // A state write on an entry that never was a proposal is the plain write.
    let plain =
        s.b.call(
            "set",
            json!({"run": s.alias, "path": "known://note", "state": "failed"}),
        )
        .await
        .expect("plain write");
    assert_eq!(plain, json!({"ok": true}));
    assert_eq!(
        s.entry("known://note").await.expect("note")["state"],
        "failed"
    );
}

#[test]
fn the_tool_doc_is_our_own() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prompts/tool_ask_user.md"),
    )
    .expect("doc");
    assert!(doc.starts_with("## <ask_user question="));
}
