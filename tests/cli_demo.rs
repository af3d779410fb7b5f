//! `rummy demo` from the real binary on a machine with no settings at all:
//! the replay finishes offline in a fresh temporary project (never the
//! current directory), labelled a replay on every line; then `rummy
//! inspect` reads its database without writing to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary with an empty environment but TMPDIR (where the demo makes
/// its directory) and HOME (so no real ~/.rummy is read).
fn rummy(tmp: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rummy"))
        .env_clear()
        .env("TMPDIR", tmp)
        .env("HOME", tmp)
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn demo_dir(tmp: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(tmp)
        .expect("tmp")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rummy-demo-"))
        })
        .collect();
    assert_eq!(dirs.len(), 1, "one demo directory: {dirs:?}");
    dirs[0].clone()
}

#[test]
fn the_demo_replays_a_whole_act_loop_offline_and_inspect_reads_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cwd = tempfile::tempdir().expect("cwd");
    let out = rummy(tmp.path(), cwd.path(), &["demo"]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for line in stdout.lines() {
        assert!(line.starts_with("[replay] "), "unlabelled line: {line:?}");
    }
    for line in stderr.lines() {
        assert!(
            line.contains("replay"),
            "unlabelled progress line: {line:?}"
        );
    }
    assert!(stdout.contains("This is a REPLAY"), "{stdout}");
    for turn in 1..=4 {
        assert!(
            stdout.contains(&format!("── turn {turn} ")),
            "turn {turn}: {stdout}"
        );
    }
    assert!(stdout.contains("packet: "), "{stdout}");
    assert!(stdout.contains("budget: "), "{stdout}");
    assert!(stdout.contains("log://turn_1/get/NOTES.md"), "{stdout}");
    assert!(
        stdout.contains("proposal accepted: set hello.py"),
        "{stdout}"
    );
    assert!(
        stdout.contains("proposal accepted: edit hello.py"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+print(f\"Hello, {name}!\")"),
        "the diff: {stdout}"
    );
    assert!(stdout.contains("finished with status 200"), "{stdout}");

    // The current directory is never touched; the project is the demo's own.
    assert_eq!(std::fs::read_dir(cwd.path()).expect("cwd").count(), 0);
    let dir = demo_dir(tmp.path());
    let script = std::fs::read_to_string(dir.join("project/hello.py")).expect("hello.py");
    assert!(script.starts_with("#!/usr/bin/env python3"), "{script}");
    assert!(
        script.contains("sys.argv[1]"),
        "the edit was applied: {script}"
    );

    let db = dir.join("rummy.db");
    let db_text = db.to_string_lossy().into_owned();
    assert!(stdout.contains(&format!("database: {db_text}")), "{stdout}");
    let before = std::fs::read(&db).expect("db bytes");

    let runs = rummy(
        tmp.path(),
        cwd.path(),
        &["inspect", "--db", &db_text, "runs"],
    );
    let listing = text(&runs.stdout);
    assert_eq!(runs.status.code(), Some(0), "{}", text(&runs.stderr));
    assert!(listing.starts_with("RUN"), "{listing}");
    let row = listing.lines().nth(1).expect("one run");
    let alias = row.split_whitespace().next().expect("alias").to_string();
    assert!(alias.starts_with("replay_"), "{row}");
    assert!(row.contains(" 200 "), "{row}");

    let run = rummy(
        tmp.path(),
        cwd.path(),
        &["inspect", "--db", &db_text, "run", &alias],
    );
    let shown = text(&run.stdout);
    assert!(shown.contains("status 200"), "{shown}");
    assert!(
        shown.contains("last update: hello.py greets by name"),
        "{shown}"
    );

    let packet = rummy(
        tmp.path(),
        cwd.path(),
        &["inspect", "--db", &db_text, "turn", &alias, "1", "--packet"],
    );
    let packet = text(&packet.stdout);
    assert!(packet.contains("--- SYSTEM (system://1) ---"), "{packet}");
    assert!(
        packet.contains("<get>NOTES.md</get>"),
        "the reply: {packet}"
    );

    let turn = rummy(
        tmp.path(),
        cwd.path(),
        &["inspect", "--db", &db_text, "turn", &alias, "2"],
    );
    let turn = text(&turn.stdout);
    assert!(turn.contains("packet rows by scheme"), "{turn}");
    assert!(turn.contains("log://turn_2/set/hello.py"), "{turn}");

    let entries = rummy(
        tmp.path(),
        cwd.path(),
        &[
            "inspect",
            "--db",
            &db_text,
            "entries",
            &alias,
            "--pattern",
            "known://**",
        ],
    );
    let entries = text(&entries.stdout);
    assert!(entries.contains("known://style/greeting"), "{entries}");
    assert!(!entries.contains("log://"), "filtered: {entries}");

    assert_eq!(
        std::fs::read(&db).expect("db bytes"),
        before,
        "inspect wrote nothing"
    );
}

#[test]
fn inspect_refuses_a_missing_database_without_creating_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("none.db");
    let out = rummy(
        tmp.path(),
        tmp.path(),
        &["inspect", "--db", &missing.to_string_lossy(), "runs"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no database"));
    assert!(!missing.exists());
}
