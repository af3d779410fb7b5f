//! The tool registry over a real WebSocket: what each loop offers the model
//! (mode, loop flags, RUMMY_THINK), entries of tool schemes reaching the
//! packet, and the RPC tool fallbacks `known`, `unknown` and `think`.

mod common;

use common::{hello_client, start_server, test_vars, FakeProvider, WsClient};
use rummy::parse::Command;
use rummy::server::{ServerHandle, StartOptions};
use rummy::store::{EntryWrite, GetRun, SetEntry, Writer};
use rummy::tools::{Tool, ToolError, ToolRegistry, TurnCtx};
use rummy::{Config, Server};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

/// Stands in for a tool a later issue brings (sh, env, ask_user, search).
struct Stub(&'static str);

#[async_trait::async_trait]
impl Tool for Stub {
    fn name(&self) -> &'static str {
        self.0
    }
    fn doc(&self) -> Option<&'static str> {
        Some("## stub")
    }
    async fn dispatch(&self, _: &TurnCtx, _: &Command, _: &str) -> Result<(), ToolError> {
        Ok(())
    }
}

async fn server_with(
    provider: &FakeProvider,
    home: &std::path::Path,
    extra: &[(&str, &str)],
    tools: Option<ToolRegistry>,
) -> ServerHandle {
    let mut vars = test_vars(home, &provider.base_url());
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(vars).expect("config");
    Server::start(
        config,
        StartOptions {
            tools: tools.map(Arc::new),
            ..StartOptions::default()
        },
    )
    .await
    .expect("server starts")
}

/// Starts a run and waits for its loop to end; returns the alias.
async fn run_once(c: &mut WsClient, mode: &str, flags: Value) -> String {
    let mut attributes = json!({"model": "fake", "mode": mode, "noRepo": true});
    if let (Some(a), Some(f)) = (attributes.as_object_mut(), flags.as_object()) {
        a.extend(f.clone());
    }
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "go", "attributes": attributes}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] != 102
    })
    .await;
    alias
}

/// The system message's tool header and the prompt's `commands=` of one request.
fn offer(request: &Value) -> (String, String) {
    let system = request["messages"][0]["content"].as_str().expect("system");
    let user = request["messages"][1]["content"].as_str().expect("user");
    let header = system.lines().next().unwrap_or_default().to_string();
    let commands = user
        .split("commands=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    (header, commands)
}

fn header(names: &str) -> String {
    let tags: Vec<String> = names.split(',').map(|n| format!("<{n}/>")).collect();
    format!("Commands you can use: {}", tags.join(", "))
}

#[actix_web::test]
async fn each_loop_offers_the_tools_its_mode_and_flags_allow() {
    let provider = FakeProvider::start(vec![]).await;
    let home = tempfile::tempdir().expect("home");
    let tools = ["search", "ask_user", "sh", "env"]
        .into_iter()
        .fold(ToolRegistry::builtin(), |r, n| r.with(Arc::new(Stub(n))));
    let server = server_with(&provider, home.path(), &[], Some(tools)).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        server.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let cases = [
        (
            "act",
            json!({}),
            "think,get,set,env,sh,rm,cp,mv,ask_user,search,update",
        ),
        (
            "ask",
            json!({}),
            "think,get,set,env,rm,cp,mv,ask_user,search,update",
        ),
        (
            "act",
            json!({"noInteraction": true}),
            "think,get,set,env,sh,rm,cp,mv,search,update",
        ),
        (
            "act",
            json!({"noWeb": true}),
            "think,get,set,env,sh,rm,cp,mv,ask_user,update",
        ),
        (
            "act",
            json!({"noProposals": true}),
            "think,get,set,rm,cp,mv,search,update",
        ),
    ];
    for (mode, flags, _) in &cases {
        run_once(&mut c, mode, flags.clone()).await;
    }
    let requests = provider.requests();
    assert_eq!(requests.len(), cases.len());
    for ((mode, flags, expected), request) in cases.iter().zip(&requests) {
        let (head, commands) = offer(request);
        assert_eq!(commands, *expected, "{mode} {flags}");
        assert_eq!(head, header(expected), "{mode} {flags}");
    }
}

#[actix_web::test]
async fn think_is_offered_only_with_rummy_think() {
    let provider = FakeProvider::start(vec![]).await;
    let home = tempfile::tempdir().expect("home");
    let server = server_with(&provider, home.path(), &[("RUMMY_THINK", "0")], None).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        server.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let alias = run_once(&mut c, "ask", json!({})).await;
    let (head, commands) = offer(&provider.requests()[0]);
    assert_eq!(commands, "get,set,env,rm,cp,mv,ask_user,update");
    assert_eq!(head, header("get,set,env,rm,cp,mv,ask_user,update"));
    let system = provider.requests()[0]["messages"][0]["content"].to_string();
    assert!(!system.contains("<think>"), "the think doc is left out");
    // Without RUMMY_THINK there is no think tool to call either.
    let err = c
        .call("think", json!({"run": alias, "path": "plan", "body": "x"}))
        .await
        .expect_err("think is off");
    assert_eq!(err["code"], -32601);
    assert_eq!(err["message"], "Method 'think' not found.");
}

#[actix_web::test]
async fn entries_of_tool_schemes_project_into_the_packet() {
    let t = start_server(vec![]).await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &root.path().to_string_lossy(),
    )
    .await;
    let alias = run_once(&mut c, "ask", json!({})).await;
    let run = t
        .server
        .store
        .run(GetRun {
            alias: alias.clone(),
            project_id: None,
        })
        .await
        .expect("store")
        .expect("run");
    // Channels of tools that do not exist yet, written the way their
    // handlers will (plugin tier); `think` entries never reach the model.
    for (path, command, body) in [
        ("sh://turn_1/ls_1", "ls", "a.txt"),
        ("env://turn_1/uname_1", "uname", "Linux"),
        ("think://1", "", "zqx-hidden-thought"),
    ] {
        t.server
            .store
            .run(SetEntry(EntryWrite {
                body: Some(body.into()),
                visibility: Some("visible".into()),
                attributes: Some(json!({ "command": command })),
                turn: 1,
                ..EntryWrite::new(run.id, path, Writer::Plugin)
            }))
            .await
            .expect("write");
    }
    c.call(
        "set",
        json!({"path": format!("run://{alias}"), "body": "again", "attributes": {"mode": "ask"}}),
    )
    .await
    .expect("continue");
    c.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias && n["params"]["status"] != 102
    })
    .await;
    let requests = t.provider.requests();
    let system = requests[1]["messages"][0]["content"]
        .as_str()
        .expect("system");
    assert!(
        system.contains(
            "<sh path=\"sh://turn_1/ls_1\" turn=\"1\" summary=\"\" visibility=\"visible\" tokens=\"7\"># sh ls\na.txt</sh>"
        ),
        "{system}"
    );
    assert!(
        system.contains("<env path=\"env://turn_1/uname_1\"")
            && system.contains("># env uname\nLinux</env>"),
        "{system}"
    );
    assert!(!requests[1].to_string().contains("zqx-hidden-thought"));
}

/// A server with one finished run (so its next turn is 2).
async fn with_run() -> (common::TestServer, WsClient, String) {
    let t = start_server(vec![]).await;
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "p",
        &common::project_dir("tool_registry"),
    )
    .await;
    let alias = run_once(&mut c, "ask", json!({})).await;
    (t, c, alias)
}

async fn entries(c: &mut WsClient, alias: &str, pattern: &str) -> Vec<Value> {
    let rows = c
        .call("getEntries", json!({"run": alias, "pattern": pattern}))
        .await
        .expect("getEntries");
    rows.as_array().expect("rows").clone()
}

#[actix_web::test]
async fn discover_lists_the_tool_fallbacks() {
    let (_t, mut c, _) = with_run().await;
    let d = c.call("discover", json!({})).await.expect("discover");
    for tool in ["known", "unknown", "think"] {
        let params = &d["methods"][tool]["params"];
        assert!(params["run"]
            .as_str()
            .expect("run")
            .starts_with("string — "));
        assert!(params["path"]
            .as_str()
            .expect("path")
            .starts_with("string — "));
        assert!(params["body"]
            .as_str()
            .expect("body")
            .starts_with("string? — "));
        assert!(params["to"].as_str().expect("to").starts_with("string? — "));
        assert!(params["attributes"]
            .as_str()
            .expect("attributes")
            .starts_with("object? — "));
    }
}

#[actix_web::test]
async fn the_known_fallback_writes_as_the_model_through_the_size_gate() {
    let (_t, mut c, alias) = with_run().await;
    let bad = |e: Result<Value, Value>| e.expect_err("refused")["message"].clone();
    assert_eq!(
        bad(c.call_unchecked("known", json!({})).await),
        "path is required",
        "path is checked before run"
    );
    assert_eq!(
        bad(c
            .call_unchecked("known", json!({"path": "known://a"}))
            .await),
        "run is required"
    );
    assert_eq!(
        bad(c
            .call("known", json!({"run": "nope", "path": "known://a"}))
            .await),
        "Run 'nope' not found."
    );
    assert_eq!(
        bad(c
            .call(
                "known",
                json!({"run": alias, "path": "prompt://9", "body": "x"})
            )
            .await),
        "known: path must be a known:// path"
    );
    let big = "word ".repeat(300);
    let refused = bad(c
        .call(
            "known",
            json!({"run": alias, "path": "known://big", "body": big}),
        )
        .await);
    assert!(
        refused
            .as_str()
            .expect("message")
            .starts_with("known: Entry too large (750 tokens, max 512)."),
        "{refused}"
    );
    assert_eq!(
        entries(&mut c, &alias, "known://**").await,
        Vec::<Value>::new()
    );
    assert_eq!(
        entries(&mut c, &alias, "log://turn_2/**").await,
        Vec::<Value>::new(),
        "a refused call writes nothing"
    );

    let r = c
        .call(
            "known",
            json!({"run": alias, "path": "facts/sky", "body": "The sky is blue.",
                   "attributes": {"summary": "sky,color"}}),
        )
        .await
        .expect("known");
    assert_eq!(r, json!({"status": "ok"}));
    let known = entries(&mut c, &alias, "known://**").await;
    assert_eq!(known.len(), 1, "{known:?}");
    assert_eq!(known[0]["path"], "known://facts/sky");
    assert_eq!(known[0]["state"], "resolved");
    assert_eq!(known[0]["visibility"], "summarized");
    assert_eq!(known[0]["attributes"], json!({"summary": "sky,color"}));
    let log = entries(&mut c, &alias, "log://turn_2/known/**").await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["path"], "log://turn_2/known/facts/sky");
    assert_eq!(log[0]["state"], "resolved");
    assert_eq!(
        log[0]["attributes"],
        json!({"summary": "sky,color", "path": "facts/sky", "action": "known"})
    );
    // The same call again gets its own record.
    c.call(
        "known",
        json!({"run": alias, "path": "facts/sky", "body": "The sky is blue."}),
    )
    .await
    .expect("again");
    let log = entries(&mut c, &alias, "log://turn_2/known/**").await;
    let paths: Vec<&Value> = log.iter().map(|e| &e["path"]).collect();
    assert_eq!(
        paths,
        [
            "log://turn_2/known/facts/sky",
            "log://turn_2/known/facts/sky_1"
        ]
    );
}

#[actix_web::test]
async fn the_unknown_fallback_writes_each_question_once() {
    let (_t, mut c, alias) = with_run().await;
    let ask = |path: &str| json!({"run": alias, "path": path, "body": "What color is the sky?", "to": "known://sky"});
    c.call("unknown", ask("unknown://sky/color"))
        .await
        .expect("first");
    let unknowns = entries(&mut c, &alias, "unknown://**").await;
    assert_eq!(unknowns.len(), 1);
    assert_eq!(unknowns[0]["path"], "unknown://sky/color");
    assert_eq!(unknowns[0]["visibility"], "visible");
    let log = entries(&mut c, &alias, "log://turn_2/unknown/**").await;
    assert_eq!(
        log[0]["attributes"],
        json!({"path": "unknown://sky/color", "to": "known://sky", "action": "unknown"})
    );

    let r = c
        .call("unknown", ask("unknown://sky/hue"))
        .await
        .expect("second");
    assert_eq!(r, json!({"status": "ok"}));
    assert_eq!(
        entries(&mut c, &alias, "unknown://**").await.len(),
        1,
        "the same question is not written twice"
    );
    let errors = entries(&mut c, &alias, "log://turn_2/error/**").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["state"], "failed");
    assert_eq!(errors[0]["outcome"], "status:400");
    assert!(errors[0]["path"]
        .as_str()
        .expect("path")
        .contains("Unknown%20deduped"));
}

#[actix_web::test]
async fn the_think_fallback_only_records_the_thought() {
    let (_t, mut c, alias) = with_run().await;
    let before = entries(&mut c, &alias, "**").await.len();
    let r = c
        .call(
            "think",
            json!({"run": alias, "path": "plan", "body": "First read the config."}),
        )
        .await
        .expect("think");
    assert_eq!(r, json!({"status": "ok"}));
    let all = entries(&mut c, &alias, "**").await;
    assert_eq!(all.len(), before + 1, "one record and nothing else");
    let log = entries(&mut c, &alias, "log://turn_2/think/**").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["path"], "log://turn_2/think/plan");
    assert_eq!(log[0]["state"], "resolved");
}
