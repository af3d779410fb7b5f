//! `rummy run` from the real binary, against the fake provider: the
//! summary on stdout and the exit codes (0, 1, 2, 124), proposals with
//! `--accept-all`, `--reject-all` and no terminal, and the remote path when
//! a running server holds the database.

mod common;

use common::{test_vars, FakeProvider, Reply};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Settings for the binary.
type Vars = Vec<(String, String)>;

const DONE: &str = r#"<update status="200">done</update>"#;

/// A throwaway RUMMY_HOME (with the database) and project directory.
struct Place {
    home: tempfile::TempDir,
    project: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            home: tempfile::tempdir().expect("home"),
            project: tempfile::tempdir().expect("project"),
        }
    }

    fn file(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.project.path().join(rel)).ok()
    }
}

/// Runs the binary with only these settings (no inherited RUMMY_*), in the
/// project directory, with stdin closed (no terminal).
async fn rummy(place: &Place, vars: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rummy"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(place.project.path())
        .args(args)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .expect("join")
}

fn vars(place: &Place, provider: &FakeProvider) -> Vec<(String, String)> {
    test_vars(place.home.path(), &provider.base_url())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[actix_web::test]
async fn a_finished_run_exits_0_and_prints_its_last_update() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="200">four</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    // One alias is configured, so --model is not needed.
    let out = rummy(&place, &vars(&place, &provider), &["run", "What is 2+2?"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "stderr: {stderr}");
    assert_eq!(text(&out.stdout), "four\n", "stdout is exactly the summary");
    assert!(stderr.contains("turn 1"), "progress on stderr: {stderr}");
    assert!(stderr.contains("status 200"), "{stderr}");
    assert!(provider.requests()[0].to_string().contains("What is 2+2?"));
}

#[actix_web::test]
async fn the_prompt_may_come_on_stdin() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="200">read it</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rummy"));
    cmd.env_clear()
        .envs(vars(&place, &provider))
        .current_dir(place.project.path())
        .args(["run", "--model", "fake"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"prompt from a pipe").expect("write");
        drop(stdin);
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "read it\n");
    assert!(provider.requests()[0]
        .to_string()
        .contains("prompt from a pipe"));
}

#[actix_web::test]
async fn a_failing_provider_exits_1() {
    let provider = FakeProvider::start(vec![Reply::Error(401, "invalid api key".into())]).await;
    let place = Place::new();
    let out = rummy(&place, &vars(&place, &provider), &["run", "hello"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 1, "stderr: {stderr}");
    assert!(stderr.contains("run ended with status 500"), "{stderr}");
}

#[actix_web::test]
async fn bad_arguments_exit_2_and_call_no_model() {
    let provider = FakeProvider::start(vec![]).await;
    let place = Place::new();
    let base = vars(&place, &provider);
    let mut two = base.clone();
    two.push(("RUMMY_MODEL_other".into(), "openai/other-model".into()));
    let cases: Vec<(Vars, Vec<&str>, &str)> = vec![
        (
            base.clone(),
            vec!["run", "--mode", "sideways", "x"],
            "sideways",
        ),
        (two, vec!["run", "x"], "--model"),
        (base.clone(), vec!["run"], "prompt"),
        (base.clone(), vec!["run", "--model", "nope", "x"], "nope"),
        (
            base.clone(),
            vec!["run", "--project", "/no/such/dir", "x"],
            "/no/such/dir",
        ),
        (
            base.clone(),
            vec!["run", "--accept-all", "--reject-all", "x"],
            "--reject-all",
        ),
    ];
    for (env, args, says) in cases {
        let out = rummy(&place, &env, &args).await;
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should mention {says}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(provider.requests().is_empty(), "no model was called");
}

#[actix_web::test]
async fn a_timeout_cancels_the_run_and_exits_124() {
    let provider =
        FakeProvider::start(vec![Reply::Delayed(Duration::from_secs(60), DONE.into())]).await;
    let place = Place::new();
    let out = rummy(
        &place,
        &vars(&place, &provider),
        &["run", "--timeout", "1", "slow one"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 124, "stderr: {stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(out.stdout.is_empty());
    // The run was recorded as cancelled (499), not left running.
    let out = rummy(
        &place,
        &vars(&place, &provider),
        &[
            "inspect",
            "--db",
            &place.home.path().join("rummy.db").to_string_lossy(),
            "runs",
        ],
    )
    .await;
    assert!(text(&out.stdout).contains(" 499 "), "{}", text(&out.stdout));
}

const WRITE: &str = r#"<set path="out.txt">hello file</set><update status="102">wrote</update>"#;

#[actix_web::test]
async fn accept_all_writes_the_proposed_file() {
    let provider = FakeProvider::start(vec![
        Reply::Content(WRITE.into()),
        Reply::Content(DONE.into()),
    ])
    .await;
    let place = Place::new();
    let out = rummy(
        &place,
        &vars(&place, &provider),
        &["run", "--mode", "act", "--accept-all", "write out.txt"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert_eq!(place.file("out.txt").as_deref(), Some("hello file"));
    assert!(
        stderr.contains("proposal set out.txt: accepted (--accept-all)"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "done\n");
}

#[actix_web::test]
async fn reject_all_and_no_terminal_leave_the_file_alone() {
    for flags in [vec!["--reject-all"], vec![]] {
        let provider = FakeProvider::start(vec![
            Reply::Content(
                r#"<set path="a.txt">rewritten</set><update status="102">u</update>"#.into(),
            ),
            Reply::Content(DONE.into()),
        ])
        .await;
        let place = Place::new();
        std::fs::write(place.project.path().join("a.txt"), "original\n").expect("file");
        let mut args = vec!["run", "--mode", "act"];
        args.extend(flags.iter().copied());
        args.push("rewrite a.txt");
        let out = rummy(&place, &vars(&place, &provider), &args).await;
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 0, "{flags:?}: {stderr}");
        assert_eq!(place.file("a.txt").as_deref(), Some("original\n"));
        let why = if flags.is_empty() {
            "rejected (no terminal"
        } else {
            "rejected (--reject-all)"
        };
        assert!(stderr.contains(why), "{flags:?}: {stderr}");
        // The model hears the rejection on its next turn.
        assert_eq!(provider.requests().len(), 2);
    }
}

#[actix_web::test]
async fn yolo_lets_the_server_accept() {
    let provider = FakeProvider::start(vec![
        Reply::Content(WRITE.into()),
        Reply::Content(DONE.into()),
    ])
    .await;
    let place = Place::new();
    let out = rummy(
        &place,
        &vars(&place, &provider),
        &["run", "--mode", "act", "--yolo", "write out.txt"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(place.file("out.txt").as_deref(), Some("hello file"));
}

#[actix_web::test]
async fn with_a_server_holding_the_database_the_run_goes_over_its_websocket() {
    let provider = FakeProvider::start(vec![
        Reply::Content(WRITE.into()),
        Reply::Content(r#"<update status="200">remote done</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let env = vars(&place, &provider);
    let config = rummy::Config::from_vars(env.clone()).expect("config");
    let server = rummy::Server::start(config, rummy::StartOptions::default())
        .await
        .expect("server");
    let addr = server.local_addr.expect("listening");
    let lock = std::fs::read_to_string(place.home.path().join("rummy.db.lock")).expect("lock");
    assert!(lock.contains(&format!("listen=ws://{addr}")), "{lock}");
    assert!(lock.contains("token=none"), "{lock}");

    let out = rummy(
        &place,
        &env,
        &["run", "--mode", "act", "--accept-all", "write remotely"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert_eq!(text(&out.stdout), "remote done\n");
    assert!(stderr.contains(&format!("ws://{addr}")), "{stderr}");
    assert_eq!(place.file("out.txt").as_deref(), Some("hello file"));
    // The run lives in the server's database.
    let runs = server
        .store
        .run(rummy::store::ListRuns {
            project_id: 1,
            limit: None,
            offset: None,
        })
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1);
    server.stop().await;
}

#[actix_web::test]
async fn a_server_that_wants_a_token_gets_it_from_the_settings() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="200">ok</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let mut env = vars(&place, &provider);
    env.push(("RUMMY_AUTH_TOKEN".into(), "s3cret-token-value".into()));
    let config = rummy::Config::from_vars(env.clone()).expect("config");
    let server = rummy::Server::start(config, rummy::StartOptions::default())
        .await
        .expect("server");
    let lock = std::fs::read_to_string(place.home.path().join("rummy.db.lock")).expect("lock");
    assert!(lock.contains("token=required"), "{lock}");
    assert!(
        !lock.contains("s3cret"),
        "the token itself is never written"
    );
    let out = rummy(&place, &env, &["run", "hi"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok\n");
    // Without the token the client says what is missing.
    let without: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k != "RUMMY_AUTH_TOKEN")
        .collect();
    let out = rummy(&place, &without, &["run", "hi"]).await;
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("RUMMY_AUTH_TOKEN"));
    server.stop().await;
}

/// A terminal through `script(1)` (util-linux): stdin and stderr of the
/// binary are a pty, so it asks; the answers come from the piped input.
#[actix_web::test]
async fn at_a_terminal_each_proposal_is_asked_about_with_the_diff_on_request() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) is not installed; the terminal path is not exercised");
        return;
    }
    let provider = FakeProvider::start(vec![
        Reply::Content(WRITE.into()),
        Reply::Content(DONE.into()),
    ])
    .await;
    let place = Place::new();
    let command = format!(
        "'{}' run --mode act 'write out.txt'",
        env!("CARGO_BIN_EXE_rummy")
    );
    let mut cmd = Command::new("script");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SHELL", "/bin/sh")
        .envs(vars(&place, &provider))
        .current_dir(place.project.path())
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("spawn script");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"d\na\n").expect("answers");
        // Held open until the end: an early end of input could reach the
        // terminal before the question is asked.
        let out = child.wait_with_output().expect("output");
        drop(stdin);
        out
    })
    .await
    .expect("join");
    let shown = text(&out.stdout);
    assert_eq!(code(&out), 0, "{shown}");
    assert!(
        shown.contains("[a]ccept, [r]eject or show the [d]iff?"),
        "{shown}"
    );
    assert!(shown.contains("+hello file"), "the diff was shown: {shown}");
    assert!(shown.contains("accepted (at the terminal)"), "{shown}");
    assert_eq!(place.file("out.txt").as_deref(), Some("hello file"));
}

#[actix_web::test]
async fn demo_with_a_model_sends_the_same_task_to_that_model() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="200">did it</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let tmp = tempfile::tempdir().expect("tmp");
    let mut env = vars(&place, &provider);
    env.push(("TMPDIR".into(), tmp.path().to_string_lossy().into_owned()));
    let out = rummy(&place, &env, &["demo", "--model", "fake"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.lines().all(|l| l.starts_with("[demo] ")), "{stdout}");
    assert!(
        !stdout.contains("replay"),
        "not labelled a replay: {stdout}"
    );
    assert!(
        stdout.contains("finished with status 200: did it"),
        "{stdout}"
    );
    let sent = provider.requests()[0].to_string();
    assert!(sent.contains("Write hello.py"), "the demo task: {sent}");
    // The user's own database is not touched.
    assert!(!place.home.path().join("rummy.db").exists());
    let out = rummy(&place, &env, &["demo", "--model", "absent"]).await;
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let made = std::fs::read_dir(tmp.path()).expect("tmp").count();
    assert_eq!(made, 1, "a refused demo makes no directory");
}

#[actix_web::test]
async fn without_a_terminal_a_question_is_declined_even_with_accept_all() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<ask_user question="Which colour?">red; blue</ask_user><update status="102">asked</update>"#
                .into(),
        ),
        Reply::Content(DONE.into()),
    ])
    .await;
    let place = Place::new();
    let out = rummy(
        &place,
        &vars(&place, &provider),
        &["run", "--mode", "act", "--accept-all", "pick a colour"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(
        stderr.contains("proposal question: Which colour?: rejected (no terminal to answer it)"),
        "{stderr}"
    );
    assert_eq!(provider.requests().len(), 2, "the run went on");
}
