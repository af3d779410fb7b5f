//! `<get>` and `<set>` driven by the model, turn by turn: each scripted
//! reply is one model turn; what it did is read back from the store, the
//! run/state history and the packet the model is sent next.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use rummy::store::{EntryRow, EntryState, GetRun, ListEntries};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A run the model drove to its end.
struct Done {
    t: TestServer,
    c: WsClient,
    alias: String,
    history: Vec<Value>,
}

/// Runs an ask-mode prompt whose model turns are `turns` (then the fake's
/// default reply, which ends the run).
async fn drive(turns: &[&str]) -> Done {
    let replies = turns
        .iter()
        .map(|t| Reply::Content(t.to_string()))
        .collect();
    let t = start_server(replies).await;
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &common::project_dir("tools_get_set"),
    )
    .await;
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "work", "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let last = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(last["params"]["status"], 200, "{last}");
    let history = last["params"]["history"]
        .as_array()
        .expect("history")
        .clone();
    Done {
        t,
        c,
        alias,
        history,
    }
}

impl Done {
    async fn entries(&self) -> Vec<EntryRow> {
        let run = self
            .t
            .server
            .store
            .run(GetRun {
                alias: self.alias.clone(),
                project_id: None,
            })
            .await
            .expect("store")
            .expect("run");
        self.t
            .server
            .store
            .run(ListEntries(run.id))
            .await
            .expect("entries")
    }

    async fn entry(&self, path: &str) -> Option<EntryRow> {
        self.entries().await.into_iter().find(|e| e.path == path)
    }

    /// The run/state history item at `path`.
    fn log(&self, path: &str) -> Value {
        self.history
            .iter()
            .find(|h| h["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("no {path} in {:#?}", self.history))
    }

    fn log_attrs(&self, path: &str) -> Value {
        let raw = self.log(path)["attributes"].clone();
        match raw {
            Value::String(s) => serde_json::from_str(&s).expect("attributes JSON"),
            other => other,
        }
    }

    /// System and user message of the `n`th request (0-based).
    fn packet(&self, n: usize) -> String {
        let requests = self.t.provider.requests();
        let messages = &requests[n]["messages"];
        format!(
            "{}\n{}",
            messages[0]["content"].as_str().unwrap_or_default(),
            messages[1]["content"].as_str().unwrap_or_default()
        )
    }

    fn last_packet(&self) -> String {
        self.packet(self.t.provider.requests().len() - 1)
    }
}

const SEED: &str = r#"<set path="known://plan" visibility="summarized">step one
step two
step three</set><set path="known://other" visibility="summarized">alpha fact</set><update status="102">seeded</update>"#;

const PLAN: &str = "step one\nstep two\nstep three";

// ---- get ----

#[actix_web::test]
async fn get_glob_lists_matches_with_tokens_and_promotes_them() {
    let mut d = drive(&[
        SEED,
        r#"<get path="known://*"/><update status="200">read</update>"#,
    ])
    .await;
    // 28 and 10 UTF-16 units at 2 per token.
    assert_eq!(
        d.log("log://turn_2/get/known%3A//*")["body"],
        "get path=\"known://*\": 2 matched (19 tokens)\nknown://other (5)\nknown://plan (14)"
    );
    for path in ["known://plan", "known://other"] {
        let e = d.entry(path).await.expect("entry");
        assert_eq!(e.visibility, "visible", "{path}");
        assert_eq!(e.turn, 2, "{path} promoted in turn 2");
    }
    let listed =
        d.c.call(
            "getEntries",
            json!({"run": d.alias, "pattern": "known://*", "visibility": "visible"}),
        )
        .await
        .expect("getEntries");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn get_preview_lists_without_promoting() {
    let d = drive(&[
        SEED,
        r#"<get path="known://*" body="alpha" preview/><update status="200">looked</update>"#,
    ])
    .await;
    let log = d.log("log://turn_2/get/known%3A//*");
    assert_eq!(
        log["body"],
        "PREVIEW get path=\"known://*\" body=\"alpha\": 1 matched (5 tokens)\nknown://other (5)"
    );
    assert_eq!(log["state"], "resolved");
    assert_eq!(
        d.entry("known://other").await.expect("entry").visibility,
        "summarized"
    );
}

#[actix_web::test]
async fn get_line_and_limit_read_a_slice_and_the_log_shows_its_lines() {
    let d = drive(&[
        SEED,
        r#"<get path="known://plan" line="2" limit="1"/><get path="known://plan" line="-2"/><update status="102">sliced</update>"#,
    ])
    .await;
    let first = d.log("log://turn_2/get/known%3A//plan");
    assert_eq!(
        first["body"],
        "known://plan\n[lines 2–2 / 3 total]\nstep two"
    );
    let attrs = d.log_attrs("log://turn_2/get/known%3A//plan");
    assert_eq!(attrs["lineStart"], 2);
    assert_eq!(attrs["lineEnd"], 2);
    assert_eq!(attrs["totalLines"], 3);
    assert_eq!(
        d.log("log://turn_2/get/known%3A//plan_1")["body"],
        "known://plan\n[lines 2–3 / 3 total]\nstep two\nstep three"
    );
    // A slice read promotes nothing.
    assert_eq!(
        d.entry("known://plan").await.expect("plan").visibility,
        "summarized"
    );
    let packet = d.last_packet();
    assert!(
        packet.contains(
            "<get path=\"log://turn_2/get/known%3A//plan\" target=\"known://plan\" status=\"200\" lines=\"2-2/3\""
        ),
        "{packet}"
    );
    assert!(packet.contains("lines=\"2-3/3\""), "{packet}");
}

#[actix_web::test]
async fn get_line_on_a_glob_fails_validation() {
    let d = drive(&[
        SEED,
        r#"<get path="known://*" line="1"/><update status="102">x</update>"#,
    ])
    .await;
    let log = d.log("log://turn_2/get/known%3A//*");
    assert_eq!(log["state"], "failed");
    assert_eq!(log["outcome"], "validation");
    assert_eq!(
        log["body"],
        "line/limit requires a single path, not a glob or body filter"
    );
}

#[actix_web::test]
async fn get_visibility_attribute_applies_after_the_promotion() {
    let d = drive(&[
        SEED,
        r#"<get path="known://plan" visibility="archived"/><update status="200">x</update>"#,
    ])
    .await;
    assert_eq!(
        d.log("log://turn_2/get/known%3A//plan")["body"],
        "known://plan promoted"
    );
    let e = d.entry("known://plan").await.expect("plan");
    assert_eq!(e.visibility, "archived");
    assert_eq!(e.turn, 2);
}

#[actix_web::test]
async fn get_of_a_missing_path_is_logged_not_found() {
    let d = drive(&[r#"<get path="known://nope"/><update status="200">x</update>"#]).await;
    let log = d.log("log://turn_1/get/known%3A//nope");
    assert_eq!(log["body"], "known://nope not found");
    assert_eq!(log["state"], "resolved");
}

// ---- set: edit forms ----

/// Seeds the plan, applies `edit` (a whole `<set>` tag) in turn 2, and
/// checks the plan now reads `expected` and the log shows the edit.
async fn edit_applies(edit: &str, expected: &str) -> Done {
    let turn = format!("{edit}<update status=\"102\">edited</update>");
    let d = drive(&[SEED, &turn]).await;
    let log_path = "log://turn_2/set/known%3A//plan";
    let log = d.log(log_path);
    assert_eq!(log["state"], "resolved", "{edit}: {log}");
    assert_eq!(log["body"], expected, "{edit}");
    let plan = d.entry("known://plan").await.expect("plan");
    assert_eq!(plan.body, expected, "{edit}");
    assert_eq!(plan.state, EntryState::Resolved);
    assert_eq!(
        plan.visibility, "summarized",
        "an edit keeps the visibility"
    );
    let attrs = d.log_attrs(log_path);
    assert_eq!(attrs["beforeTokens"], 14, "{edit}");
    assert!(
        attrs["patch"]
            .as_str()
            .is_some_and(|p| p.contains("--- known://plan")),
        "{edit}: {attrs}"
    );
    let packet = d.last_packet();
    let after = attrs["afterTokens"].as_i64().expect("afterTokens");
    assert!(
        packet.contains(&format!("# set known://plan 14→{after} tokens")),
        "{edit}: {packet}"
    );
    d
}

#[actix_web::test]
async fn set_merge_block_edits_the_body() {
    let d = edit_applies(
        "<set path=\"known://plan\"><<<<<<< SEARCH\nstep two\n=======\nstep 2\n>>>>>>> REPLACE</set>",
        "step one\nstep 2\nstep three",
    )
    .await;
    assert!(d.last_packet().contains(
        "# set known://plan 14→13 tokens\n<<<<<<< SEARCH\nstep two\n=======\nstep 2\n>>>>>>> REPLACE"
    ));
}

#[actix_web::test]
async fn set_replace_only_block_replaces_the_body() {
    edit_applies(
        "<set path=\"known://plan\">=======\nall new\n>>>>>>> REPLACE</set>",
        "all new",
    )
    .await;
}

#[actix_web::test]
async fn set_unified_diff_edits_the_body() {
    edit_applies(
        "<set path=\"known://plan\">@@ -1,3 +1,3 @@\n step one\n-step two\n+step 2\n step three</set>",
        "step one\nstep 2\nstep three",
    )
    .await;
}

#[actix_web::test]
async fn set_old_new_text_edits_the_body() {
    edit_applies(
        "<set path=\"known://plan\"><old_text>step three</old_text>\n<new_text>step 3</new_text></set>",
        "step one\nstep two\nstep 3",
    )
    .await;
}

#[actix_web::test]
async fn set_json_edit_edits_the_body() {
    edit_applies(
        r#"<set path="known://plan">{"search": "one", "replace": "1"}</set>"#,
        "step 1\nstep two\nstep three",
    )
    .await;
}

#[actix_web::test]
async fn set_sed_edits_with_any_delimiter() {
    edit_applies(
        "<set path=\"known://plan\">s/step (two|three)/stage/</set>",
        "step one\nstage\nstage",
    )
    .await;
    edit_applies(
        "<set path=\"known://plan\">s#two#2#g; s#three#3#</set>",
        "step one\nstep 2\nstep 3",
    )
    .await;
}

#[actix_web::test]
async fn set_search_attribute_edits_the_body() {
    edit_applies(
        r#"<set path="known://plan" search="step one" replace="first"/>"#,
        "first\nstep two\nstep three",
    )
    .await;
    edit_applies(
        r#"<set path="known://plan" search="step two">second</set>"#,
        "step one\nsecond\nstep three",
    )
    .await;
}

#[actix_web::test]
async fn set_body_attribute_edits_the_body() {
    edit_applies(
        r#"<set path="known://plan" body="three">3</set>"#,
        "step one\nstep two\nstep 3",
    )
    .await;
}

#[actix_web::test]
async fn replacements_are_inserted_literally_and_an_empty_search_appends() {
    edit_applies(
        "<set path=\"known://plan\"><<<<<<< SEARCH\nstep one\n=======\ncost $& $$\n>>>>>>> REPLACE</set>",
        "cost $& $$\nstep two\nstep three",
    )
    .await;
    edit_applies(
        "<set path=\"known://plan\"><<<<<<< SEARCH\n\n=======\nstep four\n>>>>>>> REPLACE</set>",
        "step one\nstep two\nstep three\nstep four\n",
    )
    .await;
}

// ---- set: failures ----

/// Seeds the plan, runs `edit` in turn 2 and checks it failed with
/// `outcome`, left the plan alone and the model reads the error next turn.
async fn edit_fails(edit: &str, outcome: &str) -> (Done, String) {
    let turn = format!("{edit}<update status=\"102\">tried</update>");
    let d = drive(&[SEED, &turn]).await;
    let log_path = "log://turn_2/set/known%3A//plan";
    let log = d.log(log_path);
    assert_eq!(log["state"], "failed", "{edit}: {log}");
    assert_eq!(log["outcome"], outcome, "{edit}");
    let error = d.log_attrs(log_path)["error"]
        .as_str()
        .expect("error attribute")
        .to_string();
    assert_eq!(d.entry("known://plan").await.expect("plan").body, PLAN);
    let packet = d.last_packet();
    assert!(
        packet.contains(&format!("# set known://plan\n{error}")),
        "{edit}: {packet}"
    );
    (d, error)
}

#[actix_web::test]
async fn an_edit_that_matches_nothing_fails_and_changes_nothing() {
    let (_, error) = edit_fails(
        "<set path=\"known://plan\"><<<<<<< SEARCH\nstep nine\n=======\nstep 9\n>>>>>>> REPLACE</set>",
        "conflict",
    )
    .await;
    assert!(error.starts_with("SEARCH text not found"), "{error}");
}

#[actix_web::test]
async fn an_ambiguous_edit_fails_and_changes_nothing() {
    // Indented differently from the body, so it can only match line-wise,
    // and it does in two places.
    let turn = "<set path=\"known://plan\"><<<<<<< SEARCH\n  step\n=======\nx\n>>>>>>> REPLACE</set><update status=\"102\">tried</update>";
    let seed = r#"<set path="known://plan" visibility="summarized">step
one
step</set><update status="102">seeded</update>"#;
    let d = drive(&[seed, turn]).await;
    let log = d.log("log://turn_2/set/known%3A//plan");
    assert_eq!(log["state"], "failed", "{log}");
    assert_eq!(log["outcome"], "conflict");
    let error = d.log_attrs("log://turn_2/set/known%3A//plan")["error"].clone();
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains("matches 2 places")),
        "{error}"
    );
    assert_eq!(
        d.entry("known://plan").await.expect("plan").body,
        "step\none\nstep"
    );
}

#[actix_web::test]
async fn a_sed_that_matches_nothing_fails() {
    edit_fails("<set path=\"known://plan\">s/nine/9/g</set>", "conflict").await;
}

#[actix_web::test]
async fn an_edit_of_a_missing_entry_is_not_found() {
    let d = drive(&[
        r#"<set path="known://nope" search="a" replace="b"/><update status="102">x</update>"#,
    ])
    .await;
    let log = d.log("log://turn_1/set/known%3A//nope");
    assert_eq!(log["state"], "failed");
    assert_eq!(log["outcome"], "not_found");
    assert_eq!(
        d.log_attrs("log://turn_1/set/known%3A//nope")["error"],
        "known://nope not found in context"
    );
    assert!(d.entry("known://nope").await.is_none());
}

#[actix_web::test]
async fn an_edit_form_on_a_missing_file_fails_not_found() {
    let d = drive(&[
        "<set path=\"src/a.rs\"><<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE</set><update status=\"102\">x</update>",
    ])
    .await;
    // Edits are computed against the file on disk; there is none.
    let log = d.log("log://turn_1/set/src/a.rs");
    assert_eq!(log["state"], "failed");
    assert_eq!(log["outcome"], "not_found");
    assert!(d.entry("src/a.rs").await.is_none());
}

// ---- set: preview, summary, projection, size gate ----

#[actix_web::test]
async fn set_preview_lists_and_writes_nothing() {
    let d = drive(&[
        SEED,
        r#"<set path="known://plan" preview>replaced</set><update status="102">x</update>"#,
    ])
    .await;
    assert_eq!(
        d.log("log://turn_2/set/known%3A//plan")["body"],
        "PREVIEW set path=\"known://plan\": 1 matched (14 tokens)\nknown://plan (14)"
    );
    assert_eq!(d.entry("known://plan").await.expect("plan").body, PLAN);
}

#[actix_web::test]
async fn a_bodyless_visibility_change_stores_the_summary() {
    let d = drive(&[
        SEED,
        r#"<set path="known://plan" visibility="archived" summary="plan,steps"/><update status="102">x</update>"#,
    ])
    .await;
    let log = d.log("log://turn_2/set/known%3A//plan");
    assert_eq!(log["body"], "known://plan set to archived");
    let plan = d.entry("known://plan").await.expect("plan");
    assert_eq!(plan.visibility, "archived");
    assert_eq!(plan.body, PLAN);
    let attrs: Value = serde_json::from_str(&plan.attributes).expect("json");
    assert_eq!(attrs["summary"], "plan,steps");
}

#[actix_web::test]
async fn a_full_write_logs_the_change_as_a_merge_block() {
    let d = drive(&[
        SEED,
        r#"<set path="known://plan">v2</set><update status="102">x</update>"#,
    ])
    .await;
    let attrs = d.log_attrs("log://turn_2/set/known%3A//plan");
    assert_eq!(attrs["beforeTokens"], 14);
    assert_eq!(attrs["afterTokens"], 1);
    let merge = format!("<<<<<<< SEARCH\n{PLAN}\n=======\nv2\n>>>>>>> REPLACE");
    assert_eq!(attrs["merge"], merge.as_str());
    assert!(d
        .last_packet()
        .contains(&format!("# set known://plan 14→1 tokens\n{merge}")));
    // The first write of a path has an empty SEARCH side.
    let first = d.log_attrs("log://turn_1/set/known%3A//other");
    assert_eq!(
        first["merge"],
        "<<<<<<< SEARCH\n=======\nalpha fact\n>>>>>>> REPLACE"
    );
    assert_eq!(first["beforeTokens"], 0);
}

#[actix_web::test]
async fn an_oversized_known_write_fails_and_stores_nothing() {
    // 512 tokens at 2 characters each is the limit.
    let big = "x".repeat(1100);
    let turn = format!("<set path=\"known://big\">{big}</set><update status=\"102\">x</update>");
    let d = drive(&[&turn]).await;
    let log = d.log("log://turn_1/set/known%3A//big");
    assert_eq!(log["state"], "failed");
    assert_eq!(log["outcome"], "overflow:550");
    let body = log["body"].as_str().expect("body");
    assert!(
        body.starts_with("Entry too large (550 tokens, max 512)."),
        "{body}"
    );
    assert!(body.contains("Split"), "{body}");
    assert!(!body.contains("xxxx"), "the refused body is not stored");
    assert!(d.entry("known://big").await.is_none());
}

#[actix_web::test]
async fn an_edit_that_grows_a_known_past_the_limit_fails() {
    let big = "y".repeat(1100);
    let (_, error) = edit_fails(
        &format!("<set path=\"known://plan\" search=\"step two\" replace=\"{big}\"/>"),
        "overflow:560",
    )
    .await;
    assert!(error.starts_with("Entry too large (560 tokens"), "{error}");
}

#[actix_web::test]
async fn a_filtered_glob_write_replaces_the_matches_and_lists_them() {
    let d = drive(&[
        SEED,
        r#"<set path="known://*" filter="alpha">beta fact</set><update status="102">x</update>"#,
    ])
    .await;
    assert_eq!(
        d.log("log://turn_2/set/known%3A//*")["body"],
        "set path=\"known://*\" body=\"alpha\": 1 matched (5 tokens)\nknown://other (5)"
    );
    assert_eq!(
        d.entry("known://other").await.expect("other").body,
        "beta fact"
    );
    assert_eq!(d.entry("known://plan").await.expect("plan").body, PLAN);
    assert!(
        d.entry("known://*").await.is_none(),
        "no literal glob entry"
    );
}

#[actix_web::test]
async fn a_glob_edit_applies_to_the_matches_its_body_filter_keeps() {
    let d = drive(&[
        SEED,
        r#"<set path="known://*" body="step two">step 2</set><update status="102">x</update>"#,
    ])
    .await;
    let log = d.log("log://turn_2/set/known%3A//*");
    assert_eq!(log["state"], "resolved", "{log}");
    assert_eq!(
        d.entry("known://plan").await.expect("plan").body,
        "step one\nstep 2\nstep three"
    );
    assert_eq!(
        d.entry("known://other").await.expect("other").body,
        "alpha fact"
    );
}
