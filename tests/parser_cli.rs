//! `rummy parse` end to end: the real binary, a reply on standard input,
//! one JSON object on standard output, exit 0 whatever the model wrote.

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

fn rummy_parse(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rummy"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn prints_commands_warnings_and_unparsed() {
    let reply = "Checking.\n<get path=\"src/a.js\"/>\n<update status=\"200\">done";
    let (code, out) = rummy_parse(&[], reply.as_bytes());
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({
            "commands": [
                {"name": "get", "path": "src/a.js"},
                {"name": "update", "status": 200, "body": "done"}
            ],
            "warnings": ["Unclosed <update> tag — content captured anyway"],
            "unparsed": "Checking."
        })
    );
    assert_eq!(out.lines().count(), 1, "compact by default");
}

#[test]
fn pretty_and_cap() {
    let (code, out) = rummy_parse(
        &["--pretty", "--max-commands", "1"],
        b"<get>a</get><get>b</get>",
    );
    assert_eq!(code, 0);
    assert!(out.lines().count() > 3, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["commands"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["warnings"][0],
        "Tool call limit (1) reached — remaining commands dropped"
    );
}

#[test]
fn any_input_exits_zero() {
    for input in [
        &b""[..],
        b"<<<>>></set><set",
        b"\xff\xfe not utf-8 <get>x</get>",
        b"<|tool_call>call:nope{}<tool_call|>",
    ] {
        let (code, out) = rummy_parse(&[], input);
        assert_eq!(code, 0, "{input:?}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["commands"].is_array() && v["warnings"].is_array());
    }
}

#[test]
fn jsonl_batch() {
    let lines = "\"<get>a</get>\"\n\"prose\"\n";
    let (code, out) = rummy_parse(&["--jsonl"], lines.as_bytes());
    assert_eq!(code, 0);
    let results: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["unparsed"], "prose");
}
