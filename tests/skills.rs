//! Skills and personas over a real WebSocket: files under RUMMY_HOME,
//! skill:// entries the model sees, personas on the run, and names that
//! try to leave their folder.

mod common;

use common::{hello_client, start_server, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

async fn hello(f: &TestServer, project: &str) -> WsClient {
    let root = f.home.path().join(project);
    std::fs::create_dir_all(&root).expect("root");
    hello_client(
        f.server.local_addr.expect("listening"),
        project,
        &root.to_string_lossy(),
    )
    .await
}

async fn run_to_end(c: &mut WsClient, run: Option<&str>, prompt: &str) -> String {
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
    assert_eq!(done["params"]["status"], 200, "{done}");
    alias
}

fn error_message(e: &Value) -> String {
    assert_eq!(e["code"], -32602, "{e}");
    e["message"].as_str().expect("message").to_string()
}

/// The text of the system and user messages of one provider request.
fn request_text(request: &Value) -> String {
    request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[actix_web::test]
async fn the_home_folders_exist_and_list_their_markdown_files() {
    let f = start_server(vec![]).await;
    let skills = f.home.path().join("skills");
    let personas = f.home.path().join("personas");
    assert!(skills.is_dir() && personas.is_dir(), "created at start");
    std::fs::write(skills.join("rust.md"), "Prefer iterators.").unwrap();
    std::fs::write(skills.join("alpha.md"), "First.").unwrap();
    std::fs::write(skills.join("notes.txt"), "not a skill").unwrap();
    std::fs::write(personas.join("pirate.md"), "Talk like a pirate.").unwrap();
    let mut c = hello(&f, "lists").await;

    let listed = c.call("listSkills", json!({})).await.expect("listSkills");
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "rust"]);
    assert_eq!(
        listed[1]["path"],
        skills.join("rust.md").to_string_lossy().as_ref()
    );
    let personas_listed = c
        .call("listPersonas", json!({}))
        .await
        .expect("listPersonas");
    assert_eq!(
        personas_listed,
        json!([{"name": "pirate", "path": personas.join("pirate.md").to_string_lossy()}])
    );

    let discovered = c.call("discover", json!({})).await.expect("discover");
    for m in [
        "skill/add",
        "skill/remove",
        "getSkills",
        "listSkills",
        "persona/set",
        "listPersonas",
    ] {
        assert!(discovered["methods"][m].is_object(), "{m} is discovered");
    }
    assert_eq!(
        discovered["methods"]["skill/add"]["params"]["name"]
            .as_str()
            .map(|l| l.starts_with("string — ")),
        Some(true)
    );
    f.server.stop().await;
}

#[actix_web::test]
async fn an_added_skill_reaches_the_next_packet_and_leaves_when_removed() {
    let f = start_server(vec![
        Reply::Content(r#"<update status="200">first</update>"#.into()),
        Reply::Content(r#"<update status="200">second</update>"#.into()),
        Reply::Content(r#"<update status="200">third</update>"#.into()),
    ])
    .await;
    std::fs::write(
        f.home.path().join("skills/reviewer.md"),
        "SKILL-BODY: always cite the line numbers.",
    )
    .unwrap();
    let mut c = hello(&f, "skilled").await;
    let run = run_to_end(&mut c, None, "Start").await;

    let added = c
        .call("skill/add", json!({"run": run, "name": "reviewer"}))
        .await
        .expect("skill/add");
    assert_eq!(added, json!({"status": "ok", "skill": "reviewer"}));
    let skills = c.call("getSkills", json!({"run": run})).await.unwrap();
    assert_eq!(skills, json!([{"name": "reviewer"}]));
    let entry = c
        .call(
            "getEntries",
            json!({"run": run, "pattern": "skill://*", "withBody": true}),
        )
        .await
        .unwrap();
    assert_eq!(entry[0]["path"], "skill://reviewer");
    assert_eq!(entry[0]["state"], "resolved");
    assert_eq!(entry[0]["visibility"], "visible");
    assert_eq!(
        entry[0]["body"],
        "SKILL-BODY: always cite the line numbers."
    );
    assert_eq!(entry[0]["attributes"]["name"], "reviewer");
    assert!(entry[0]["attributes"]["source"]
        .as_str()
        .unwrap()
        .ends_with("skills/reviewer.md"));

    run_to_end(&mut c, Some(&run), "Review").await;
    let requests = f.provider.requests();
    assert_eq!(requests.len(), 2);
    assert!(!request_text(&requests[0]).contains("SKILL-BODY"));
    assert!(
        request_text(&requests[1]).contains("SKILL-BODY: always cite the line numbers."),
        "the skill's body is in the packet"
    );

    let removed = c
        .call("skill/remove", json!({"run": run, "name": "reviewer"}))
        .await
        .expect("skill/remove");
    assert_eq!(removed, json!({"status": "ok"}));
    assert_eq!(
        c.call("getSkills", json!({"run": run})).await.unwrap(),
        json!([])
    );
    run_to_end(&mut c, Some(&run), "Again").await;
    let requests = f.provider.requests();
    assert!(!request_text(&requests[2]).contains("SKILL-BODY"));
    f.server.stop().await;
}

#[actix_web::test]
async fn skill_and_persona_refusals_are_clear_and_change_nothing() {
    let f = start_server(vec![]).await;
    std::fs::write(f.home.path().join("secret.md"), "outside the folder").unwrap();
    let mut c = hello(&f, "refusals").await;
    let run = run_to_end(&mut c, None, "Start").await;

    let e = c
        .call_unchecked("skill/add", json!({"run": run}))
        .await
        .unwrap_err();
    assert_eq!(error_message(&e), "name is required");
    // The name is checked before the run, as upstream does.
    let e = c
        .call_unchecked("skill/add", json!({"name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(error_message(&e), "run is required");
    let e = c
        .call_unchecked("skill/add", json!({"run": "nope", "name": "x"}))
        .await
        .unwrap_err();
    assert_eq!(error_message(&e), "Run not found: nope");
    let e = c
        .call_unchecked("skill/add", json!({"run": run, "name": "missing"}))
        .await
        .unwrap_err();
    let missing = f.home.path().join("skills/missing.md");
    assert_eq!(
        error_message(&e),
        format!("Not found: {}", missing.display())
    );
    let secret = f.home.path().join("secret").to_string_lossy().into_owned();
    for name in ["../secret", "..", "a/b", "a\\b", secret.as_str(), "*"] {
        for method in ["skill/add", "skill/remove"] {
            let e = c
                .call_unchecked(method, json!({"run": run, "name": name}))
                .await
                .unwrap_err();
            let m = error_message(&e);
            assert!(
                m.contains("inside RUMMY_HOME/skills"),
                "{method} {name}: {m}"
            );
        }
        let e = c
            .call_unchecked("persona/set", json!({"run": run, "name": name}))
            .await
            .unwrap_err();
        assert!(error_message(&e).contains("inside RUMMY_HOME/personas"));
    }
    assert_eq!(
        c.call("getSkills", json!({"run": run})).await.unwrap(),
        json!([])
    );
    let e = c.call_unchecked("getSkills", json!({})).await.unwrap_err();
    assert_eq!(error_message(&e), "run is required");
    let e = c
        .call_unchecked("persona/set", json!({"run": run, "name": "ghost"}))
        .await
        .unwrap_err();
    assert!(error_message(&e).starts_with("Not found: "));
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(detail["persona"], Value::Null, "nothing changed");

    let mut unbound = WsClient::connect(f.server.local_addr.expect("listening")).await;
    let e = unbound
        .call_unchecked("listSkills", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e["code"], -32002, "gated: {e}");
    f.server.stop().await;
}

#[actix_web::test]
async fn a_persona_from_file_or_text_heads_the_next_loop_and_can_be_cleared() {
    let f = start_server(vec![]).await;
    std::fs::write(
        f.home.path().join("personas/pirate.md"),
        "PERSONA: speak like a pirate.",
    )
    .unwrap();
    let mut c = hello(&f, "personas").await;
    let run = run_to_end(&mut c, None, "Start").await;

    let set = c
        .call("persona/set", json!({"run": run, "name": "pirate"}))
        .await
        .expect("persona/set");
    assert_eq!(set, json!({"status": "ok"}));
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(detail["persona"], "PERSONA: speak like a pirate.");
    run_to_end(&mut c, Some(&run), "Ahoy").await;
    assert!(request_text(&f.provider.requests()[1]).contains("PERSONA: speak like a pirate."));

    // Text wins over a name.
    c.call(
        "persona/set",
        json!({"run": run, "name": "pirate", "text": "PERSONA: a terse reviewer."}),
    )
    .await
    .unwrap();
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(detail["persona"], "PERSONA: a terse reviewer.");

    // Neither clears it, as the method's description says.
    c.call("persona/set", json!({"run": run})).await.unwrap();
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    assert_eq!(detail["persona"], Value::Null);
    run_to_end(&mut c, Some(&run), "Plain").await;
    assert!(!request_text(&f.provider.requests()[2]).contains("PERSONA:"));
    f.server.stop().await;
}
