//! The packet of an ask-mode turn, byte for byte: the system and user
//! messages exactly as the fake provider receives them, compared with
//! `tests/golden/ask_turn.system.txt` and `tests/golden/ask_turn.user.txt`.
//!
//! Turn 1 writes an unknown and a known entry and continues (status 155);
//! turn 2's packet is the golden one: the tool list and docs, the persona,
//! `<context>` with the known, `<log>`, `<unknowns>`, the discovery
//! instructions, `<budget>` and `<prompt>`.
//!
//! After an intended change to the packet, rewrite the golden files with
//! `RUMMY_BLESS=1 cargo test --test golden_packet` and review the diff.

mod common;

use common::{hello_client, start_server, Reply};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the golden file, or rewrites it under RUMMY_BLESS=1.
fn check(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var("RUMMY_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("mkdir");
        std::fs::write(&path, actual).expect("bless");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run RUMMY_BLESS=1 cargo test --test golden_packet",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n expected: {:?}\n   actual: {:?}\n\
             (RUMMY_BLESS=1 rewrites it after an intended change)\n--- actual ---\n{actual}",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line),
        );
    }
}

#[actix_web::test]
async fn an_ask_turn_packet_matches_the_golden_text() {
    let t = start_server(vec![
        Reply::Content(
            "<think>Record the question, then what the notes say.</think>\n\
             <set path=\"unknown://sky/color\">What color is the sky on a clear day?</set>\n\
             <set path=\"known://sky/color\" summary=\"sky,color\">A clear daytime sky is blue.</set>\n\
             <update status=\"155\">sky color distilled</update>"
                .into(),
        ),
        Reply::Content("<update status=\"200\">Blue.</update>".into()),
    ])
    .await;
    let root = tempfile::tempdir().expect("root");
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "golden",
        &root.path().to_string_lossy(),
    )
    .await;
    let r = c
        .call(
            "set",
            json!({"path": "run://golden", "body": "What color is the sky? One word.",
                   "attributes": {"model": "fake", "mode": "ask", "noRepo": true,
                                  "persona": "Be terse."}}),
        )
        .await
        .expect("run starts");
    assert_eq!(r["alias"], "golden");
    let end = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == "golden" && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(end["params"]["status"], 200);
    let requests = t.provider.requests();
    assert_eq!(requests.len(), 2);
    let messages = requests[1]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[1]["role"], "user");
    check(
        "ask_turn.system.txt",
        messages[0]["content"].as_str().expect("system text"),
    );
    check(
        "ask_turn.user.txt",
        messages[1]["content"].as_str().expect("user text"),
    );
}

/// Spec 02 §1.6's worked example, with every tool registered: an act run
/// in a project holding `trivia/capitals.csv`; turn 1 records the unknown
/// (summarized), turn 2 reads the file, distils it into a known, demotes
/// the file, archives turn 1's log and says 155; turn 3's packet (the
/// discovery phase, persona "Be terse.") is the golden one.
#[actix_web::test]
async fn the_worked_example_packet_matches_the_golden_text() {
    let t = start_server(vec![
        Reply::Content(
            "<set path=\"unknown://countries/france/capital\" visibility=\"summarized\">\
             What is the capital of France?</set>\n\
             <update status=\"145\">france defined</update>"
                .into(),
        ),
        Reply::Content(
            "<get path=\"trivia/capitals.csv\"/>\n\
             <set path=\"known://countries/france/capital\" summary=\"countries,france,capital\">\
             Paris is the capital of France.\n[source](trivia/capitals.csv)</set>\n\
             <set path=\"trivia/capitals.csv\" visibility=\"summarized\"/>\n\
             <mv path=\"log://turn_1/**\" visibility=\"archived\"/>\n\
             <update status=\"155\">france distilled</update>"
                .into(),
        ),
        Reply::Content("<update status=\"200\">Paris</update>".into()),
    ])
    .await;
    let root = tempfile::tempdir().expect("root");
    std::fs::create_dir_all(root.path().join("trivia")).expect("dir");
    std::fs::write(
        root.path().join("trivia/capitals.csv"),
        "country,capital\nFrance,Paris\nJapan,Tokyo\nPeru,Lima\nKenya,Nairobi\n",
    )
    .expect("file");
    let mut c = hello_client(
        t.server.local_addr.expect("listening"),
        "golden-example",
        &root.path().to_string_lossy(),
    )
    .await;
    c.call(
        "set",
        json!({"path": "run://example", "body": "What is the capital of France? Answer in one word.",
               "attributes": {"model": "fake", "mode": "act", "persona": "Be terse."}}),
    )
    .await
    .expect("run starts");
    let end = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == "example" && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(end["params"]["status"], 200);
    let requests = t.provider.requests();
    assert_eq!(requests.len(), 3);
    let messages = requests[2]["messages"].as_array().expect("messages");
    check(
        "worked_example.system.txt",
        messages[0]["content"].as_str().expect("system text"),
    );
    check(
        "worked_example.user.txt",
        messages[1]["content"].as_str().expect("user text"),
    );
}
