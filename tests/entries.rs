//! Entry RPCs over a real WebSocket: client writes, reads, refusals,
//! forks and project files.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn start(replies: Vec<Reply>) -> TestServer {
    start_server(replies).await
}

async fn hello(f: &TestServer, project: &str, root: &Path) -> WsClient {
    hello_client(
        f.server.local_addr.expect("listening"),
        project,
        &root.to_string_lossy(),
    )
    .await
}

async fn run_to_end(c: &mut WsClient, attributes: Value, path: &str) -> String {
    let r = c
        .call(
            "set",
            json!({"path": path, "body": "Go", "attributes": attributes}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let done = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(done["params"]["status"], 200, "{done}");
    alias
}

fn paths(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["path"].as_str().map(str::to_string))
        .collect()
}

#[actix_web::test]
async fn clients_of_a_project_share_writes_and_bad_writes_change_nothing() {
    let f = start(vec![]).await;
    let root = f.home.path().join("proj");
    std::fs::create_dir_all(&root).expect("root");
    let mut a = hello(&f, "shared", &root).await;
    let mut b = hello(&f, "shared", &root).await;
    let run = run_to_end(
        &mut a,
        json!({"model": "fake", "mode": "ask", "noRepo": true}),
        "run://",
    )
    .await;

    a.call(
        "set",
        json!({"run": run, "path": "known://fact", "body": "water is wet"}),
    )
    .await
    .expect("client writes a known");
    let seen = b
        .call("getEntries", json!({"run": run, "pattern": "known://*"}))
        .await
        .expect("getEntries");
    assert_eq!(paths(&seen), vec!["known://fact"]);
    assert_eq!(seen[0]["state"], "resolved");
    assert_eq!(seen[0]["visibility"], "summarized");
    assert_eq!(seen[0]["tokens"], 6);
    b.call(
        "set",
        json!({"run": run, "path": "unknown://why", "body": "why is water wet?"}),
    )
    .await
    .expect("second client writes");
    let all = a
        .call("getEntries", json!({"run": run, "pattern": "**"}))
        .await
        .expect("getEntries **");
    assert!(paths(&all).contains(&"unknown://why".to_string()));
    assert_eq!(
        a.call("getEntries", json!({"run": run}))
            .await
            .expect("default"),
        json!([]),
        "the default pattern lists bare files only"
    );

    // Refusals: a clear error, and nothing changes.
    let before = all.as_array().map_or(0, Vec::len);
    let refused = a
        .call(
            "set",
            json!({"run": run, "path": "log://turn_1/forged", "body": "x"}),
        )
        .await
        .expect_err("clients may not write log entries");
    assert_eq!(refused["code"], -32602);
    assert_eq!(
        refused["message"],
        "403: writer \"client\" not permitted for scheme \"log\" (allowed: system, plugin, model)"
    );
    let file = a
        .call(
            "set",
            json!({"run": run, "path": "src/main.rs", "body": "x"}),
        )
        .await
        .expect_err("clients may not write file entries");
    assert!(file["message"]
        .as_str()
        .unwrap_or_default()
        .contains("\"file\""));
    let missing = a
        .call(
            "set",
            json!({"run": "nope", "path": "known://x", "body": "x"}),
        )
        .await
        .expect_err("unknown run");
    assert_eq!(missing["message"], "Run 'nope' not found.");
    let no_run = a
        .call_unchecked("set", json!({"path": "known://x", "body": "x"}))
        .await
        .expect_err("run is required");
    assert_eq!(no_run["message"], "run is required");
    let bad_state = a
        .call_unchecked(
            "set",
            json!({"run": run, "path": "known://fact", "state": "done"}),
        )
        .await
        .expect_err("bad state");
    assert_eq!(bad_state["code"], -32602);
    let after = a
        .call("getEntries", json!({"run": run, "pattern": "**"}))
        .await
        .expect("getEntries");
    assert_eq!(after.as_array().map_or(0, Vec::len), before);
    // An unknown state filter is refused too, rather than silently matching nothing.
    let bad_filter = a
        .call_unchecked("getEntries", json!({"run": run, "state": "done"}))
        .await
        .expect_err("bad state filter");
    assert_eq!(bad_filter["code"], -32602);
    assert!(
        bad_filter["message"]
            .as_str()
            .is_some_and(|m| m.contains("state must be one of")),
        "{bad_filter}"
    );

    // Another project cannot address this run at all.
    let mut stranger = hello(&f, "other", &root).await;
    let foreign = stranger
        .call("getEntries", json!({"run": run, "pattern": "**"}))
        .await
        .expect_err("foreign run");
    assert_eq!(foreign["message"], format!("Run '{run}' not found."));

    // cp, mv, rm, get, update, append.
    a.call(
        "cp",
        json!({"run": run, "from": "known://fact", "to": "known://copy"}),
    )
    .await
    .expect("cp");
    a.call(
        "mv",
        json!({"run": run, "from": "known://copy", "to": "known://moved"}),
    )
    .await
    .expect("mv");
    a.call(
        "set",
        json!({"run": run, "path": "known://moved", "body": " indeed", "append": true}),
    )
    .await
    .expect("append");
    a.call("get", json!({"run": run, "path": "known://moved"}))
        .await
        .expect("get");
    let moved = a
        .call("getEntries", json!({"run": run, "pattern": "known://*"}))
        .await
        .expect("list");
    assert_eq!(paths(&moved), vec!["known://fact", "known://moved"]);
    assert_eq!(moved[1]["visibility"], "visible");
    assert_eq!(
        moved[1]["tokens"], 10,
        "append kept the body: 'water is wet indeed'"
    );
    a.call("rm", json!({"run": run, "path": "known://mov*"}))
        .await
        .expect("rm by pattern");
    let update = a
        .call(
            "update",
            json!({"run": run, "body": "client note", "status": 102}),
        )
        .await
        .expect("update");
    assert_eq!(update["path"], "log://turn_1/update/client%20note");
    let filtered = b
        .call(
            "getEntries",
            json!({"run": run, "pattern": "**", "bodyFilter": "*note*"}),
        )
        .await
        .expect("body filter");
    assert_eq!(paths(&filtered), vec!["log://turn_1/update/client%20note"]);
    let bad_update = a
        .call("update", json!({"run": run, "body": "x", "status": 42}))
        .await
        .expect_err("invalid status");
    assert!(bad_update["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Invalid status 42"));
}

#[actix_web::test]
async fn a_fork_sees_the_parent_and_then_diverges() {
    let f = start(vec![]).await;
    let root = f.home.path().join("proj");
    std::fs::create_dir_all(&root).expect("root");
    let mut c = hello(&f, "forks", &root).await;
    let parent = run_to_end(
        &mut c,
        json!({"model": "fake", "mode": "ask", "noRepo": true}),
        "run://",
    )
    .await;
    c.call(
        "set",
        json!({"run": parent, "path": "known://shared", "body": "from parent"}),
    )
    .await
    .expect("parent writes");
    let child = run_to_end(
        &mut c,
        json!({"fork": true, "mode": "ask", "noRepo": true}),
        &format!("run://{parent}"),
    )
    .await;
    assert_ne!(child, parent);
    let inherited = c
        .call("getEntries", json!({"run": child, "pattern": "known://*"}))
        .await
        .expect("child lists");
    assert_eq!(paths(&inherited), vec!["known://shared"]);

    c.call(
        "set",
        json!({"run": child, "path": "known://shared", "body": "child's version"}),
    )
    .await
    .expect("child rewrites");
    c.call(
        "set",
        json!({"run": child, "path": "known://own", "body": "child only"}),
    )
    .await
    .expect("child writes");
    let parent_view = c
        .call(
            "getEntries",
            json!({"run": parent, "pattern": "known://*", "bodyFilter": "*parent*"}),
        )
        .await
        .expect("parent lists");
    assert_eq!(
        paths(&parent_view),
        vec!["known://shared"],
        "parent body untouched"
    );
    let parent_all = c
        .call("getEntries", json!({"run": parent, "pattern": "known://*"}))
        .await
        .expect("parent lists");
    assert_eq!(paths(&parent_all), vec!["known://shared"]);
    let child_view = c
        .call(
            "getEntries",
            json!({"run": child, "pattern": "known://*", "bodyFilter": "*child*"}),
        )
        .await
        .expect("child lists");
    assert_eq!(paths(&child_view), vec!["known://own", "known://shared"]);

    // Bulk, append and attribute writes in the child copy on write too.
    c.call(
        "set",
        json!({"run": child, "path": "known://*", "pattern": true, "body": "child bulk"}),
    )
    .await
    .expect("child bulk write");
    c.call(
        "set",
        json!({"run": child, "path": "known://shared", "body": " more", "append": true}),
    )
    .await
    .expect("child append");
    c.call(
        "set",
        json!({"run": child, "path": "known://shared", "attributes": {"tag": "child"}}),
    )
    .await
    .expect("child attributes");
    let untouched = c
        .call(
            "getEntries",
            json!({"run": parent, "pattern": "known://*", "bodyFilter": "*parent*"}),
        )
        .await
        .expect("parent lists");
    assert_eq!(
        paths(&untouched),
        vec!["known://shared"],
        "parent body untouched"
    );
    assert_eq!(
        untouched[0]["attributes"],
        json!({}),
        "parent attributes untouched"
    );
    let bad_attributes = c
        .call_unchecked(
            "set",
            json!({"run": child, "path": "known://own", "attributes": "oops"}),
        )
        .await
        .expect_err("attributes must be an object");
    assert_eq!(bad_attributes["code"], -32602);
}

#[actix_web::test]
async fn project_files_are_scanned_under_their_constraints() {
    let f = start(vec![]).await;
    let root = f.home.path().join("repo");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::write(root.join("src/lib.rs"), "pub fn answer() -> u8 { 42 }").expect("write");
    std::fs::write(root.join("README.md"), "# demo").expect("write");
    std::fs::write(root.join(".gitignore"), "secret.txt\n").expect("write");
    std::fs::write(root.join("secret.txt"), "hunter2").expect("write");
    std::fs::write(root.join("notes.tmp"), "scratch").expect("write");
    let mut c = hello(&f, "repo", &root).await;

    let active = c
        .call(
            "file/constraint",
            json!({"pattern": root.join("src/lib.rs").to_string_lossy(), "visibility": "active"}),
        )
        .await
        .expect("constraint");
    assert_eq!(active, json!({"ok": true, "pattern": "src/lib.rs"}));
    c.call(
        "file/constraint",
        json!({"pattern": "*.tmp", "visibility": "ignore"}),
    )
    .await
    .expect("ignore rule");
    let escape = c
        .call(
            "file/constraint",
            json!({"pattern": "../outside", "visibility": "active"}),
        )
        .await
        .expect_err("escapes the root");
    assert!(escape["message"]
        .as_str()
        .unwrap_or_default()
        .contains("escapes the project root"));
    let bad = c
        .call_unchecked(
            "file/constraint",
            json!({"pattern": "x", "visibility": "sometimes"}),
        )
        .await
        .expect_err("bad visibility");
    assert_eq!(
        bad["message"],
        "file/constraint: visibility must be one of active, readonly, ignore"
    );
    assert_eq!(
        c.call("getConstraints", json!({})).await.expect("list"),
        json!([{"pattern": "*.tmp", "visibility": "ignore"}, {"pattern": "src/lib.rs", "visibility": "active"}])
    );

    let run = run_to_end(&mut c, json!({"model": "fake", "mode": "ask"}), "run://").await;
    let files = c
        .call(
            "getEntries",
            json!({"run": run, "pattern": "**", "scheme": null}),
        )
        .await
        .expect("entries");
    let file_rows: Vec<&Value> = files
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["scheme"].is_null())
        .collect();
    let names: Vec<&str> = file_rows
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    // Hidden files, .gitignored files and ignore-constrained ones stay out.
    assert_eq!(names, vec!["README.md", "src/lib.rs"]);
    let vis = |p: &str| {
        file_rows
            .iter()
            .find(|e| e["path"] == p)
            .map(|e| e["visibility"].clone())
            .unwrap_or_default()
    };
    assert_eq!(vis("src/lib.rs"), "visible");
    assert_eq!(vis("README.md"), "archived");

    c.call("file/drop", json!({"pattern": "*.tmp"}))
        .await
        .expect("drop");
    assert_eq!(
        c.call("getConstraints", json!({})).await.expect("list"),
        json!([{"pattern": "src/lib.rs", "visibility": "active"}])
    );
}
