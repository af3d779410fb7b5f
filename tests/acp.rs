//! `rummy acp` from the real binary, driven by the ACP Rust SDK's client
//! side against the fake provider. Here: the client harness (permission
//! answers, fs and terminal methods), a prompt that reads and edits a file
//! through a permission request, reject and allow always, a cancel
//! mid-turn and the turn cap. The submodules hold the client capabilities,
//! what a client watches, questions, the session lifecycle and the client
//! mode (another rummy holds the database).

#[path = "acp/capabilities.rs"]
mod capabilities;
#[path = "acp/client_mode.rs"]
mod client_mode;
mod common;
#[path = "acp/lifecycle.rs"]
mod lifecycle;
#[path = "acp/observe.rs"]
mod observe;
#[path = "acp/questions.rs"]
mod questions;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, CreateTerminalRequest,
    CreateTerminalResponse, FileSystemCapabilities, InitializeRequest, KillTerminalRequest,
    KillTerminalResponse, LoadSessionRequest, NewSessionRequest, PromptRequest,
    ReadTextFileRequest, ReadTextFileResponse, ReleaseTerminalRequest, ReleaseTerminalResponse,
    RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionNotification, SessionUpdate, SetSessionModeRequest,
    StopReason, TerminalExitStatus, TerminalOutputRequest, TerminalOutputResponse, TextContent,
    ToolCallContent, ToolKind, WaitForTerminalExitRequest, WaitForTerminalExitResponse,
    WriteTextFileRequest, WriteTextFileResponse,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client};
use common::{test_vars, FakeProvider, Reply};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

const LONG: Duration = Duration::from_secs(60);

/// What the client saw, and how it answers permission requests.
#[derive(Default)]
struct Seen {
    updates: Vec<SessionUpdate>,
    permissions: Vec<RequestPermissionRequest>,
    /// Option ids to pick, in order; when empty, reject.
    answers: VecDeque<String>,
    /// Offer `fs.read_text_file` and `fs.write_text_file`.
    offer_fs: bool,
    /// `fs/write_text_file` requests: (path, content).
    writes: Vec<(std::path::PathBuf, String)>,
    /// `fs/read_text_file` requests, by path.
    reads: Vec<std::path::PathBuf>,
    /// What `fs/read_text_file` answers (an editor's unsaved buffers);
    /// other paths are an error.
    buffers: HashMap<std::path::PathBuf, String>,
    /// Offer `terminal`.
    offer_terminal: bool,
    /// `terminal/create` command lines (`sh -c` arguments).
    terminals: Vec<String>,
    /// Finished terminals: (output, exit code), by id.
    terminal_runs: HashMap<String, (String, i32)>,
    /// Terminals whose command (`hang ...`) runs until killed, by id.
    hanging: std::collections::HashSet<String>,
    /// `terminal/kill` requests, by terminal id.
    kills: Vec<String>,
    /// More arguments for `rummy acp` (`--listen`).
    args: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn seen(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().expect("seen lock")
}

fn messages(s: &Shared) -> String {
    seen(s)
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) => match &c.content {
                ContentBlock::Text(t) => Some(t.text.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn tool_kinds(s: &Shared) -> Vec<ToolKind> {
    seen(s)
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCall(c) => Some(c.kind),
            _ => None,
        })
        .collect()
}

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
    fn write(&self, rel: &str, body: &str) {
        std::fs::write(self.project.path().join(rel), body).expect("write");
    }
    fn cwd(&self) -> std::path::PathBuf {
        self.project.path().canonicalize().expect("canonical")
    }
}

/// Spawns `rummy acp` with only these settings and runs `main` as its
/// client; waits for the process to exit after the client closes.
async fn with_agent<R>(
    vars: &[(String, String)],
    cwd: &Path,
    shared: Shared,
    main: impl AsyncFnOnce(ConnectionTo<Agent>) -> Result<R, agent_client_protocol::Error>,
) -> R {
    let args = seen(&shared).args.clone();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rummy"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .arg("acp")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let (offer_fs, offer_terminal) = {
        let s = seen(&shared);
        (s.offer_fs, s.offer_terminal)
    };
    let (on_update, on_permission, on_write, on_read) = (
        shared.clone(),
        shared.clone(),
        shared.clone(),
        shared.clone(),
    );
    let (on_term, on_output, on_wait, on_kill) =
        (shared.clone(), shared.clone(), shared.clone(), shared);
    let result = Client
        .v1()
        .on_receive_notification(
            async move |n: SessionNotification, _cx| {
                seen(&on_update).updates.push(n.update);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: RequestPermissionRequest, responder, _cx| {
                let pick = {
                    let mut s = seen(&on_permission);
                    s.permissions.push(req.clone());
                    s.answers.pop_front()
                };
                let outcome = match pick {
                    Some(id) => {
                        RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id))
                    }
                    None => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
                        "reject_once",
                    )),
                };
                responder.respond(RequestPermissionResponse::new(outcome))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WriteTextFileRequest, responder, _cx| {
                seen(&on_write).writes.push((req.path, req.content));
                responder.respond(WriteTextFileResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReadTextFileRequest,
                        responder: Responder<ReadTextFileResponse>,
                        _cx| {
                let answer = {
                    let mut s = seen(&on_read);
                    s.reads.push(req.path.clone());
                    s.buffers.get(&req.path).cloned()
                };
                match answer {
                    Some(text) => responder.respond(ReadTextFileResponse::new(text)),
                    None => responder.respond_with_error(
                        agent_client_protocol::Error::internal_error().data("no such buffer"),
                    ),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: CreateTerminalRequest, responder, _cx| {
                // The command runs to its end at once; output and wait
                // answer what it did.
                let line = req.args.last().cloned().unwrap_or_default();
                if line.starts_with("hang") {
                    let mut s = seen(&on_term);
                    let id = format!("term-{}", s.terminals.len());
                    s.terminals.push(line);
                    s.hanging.insert(id.clone());
                    return responder.respond(CreateTerminalResponse::new(id));
                }
                let out = std::process::Command::new(&req.command)
                    .args(&req.args)
                    .current_dir(req.cwd.clone().unwrap_or_default())
                    .output()
                    .expect("the terminal's command runs");
                let mut s = seen(&on_term);
                let id = format!("term-{}", s.terminals.len());
                s.terminals.push(line);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                s.terminal_runs
                    .insert(id.clone(), (text, out.status.code().unwrap_or(-1)));
                responder.respond(CreateTerminalResponse::new(id))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: TerminalOutputRequest, responder, _cx| {
                let run = seen(&on_output)
                    .terminal_runs
                    .get(&*req.terminal_id.0)
                    .cloned();
                let (text, code) = run.unwrap_or_default();
                let exit = TerminalExitStatus::new().exit_code(u32::try_from(code).ok());
                responder.respond(TerminalOutputResponse::new(text, false).exit_status(exit))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WaitForTerminalExitRequest, responder, cx: ConnectionTo<Agent>| {
                let id = req.terminal_id.0.to_string();
                if seen(&on_wait).hanging.contains(&id) {
                    // Answered once killed, off the dispatch loop so the
                    // kill can arrive.
                    let shared = on_wait.clone();
                    return cx.spawn(async move {
                        while seen(&shared).hanging.contains(&id) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        responder.respond(WaitForTerminalExitResponse::new(
                            TerminalExitStatus::new().signal("SIGKILL".to_string()),
                        ))
                    });
                }
                let run = seen(&on_wait)
                    .terminal_runs
                    .get(&*req.terminal_id.0)
                    .cloned();
                let code = run.map_or(-1, |r| r.1);
                responder.respond(WaitForTerminalExitResponse::new(
                    TerminalExitStatus::new().exit_code(u32::try_from(code).ok()),
                ))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: KillTerminalRequest, responder, _cx| {
                let id = req.terminal_id.0.to_string();
                let mut s = seen(&on_kill);
                s.hanging.remove(&id);
                s.kills.push(id);
                responder.respond(KillTerminalResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |_req: ReleaseTerminalRequest, responder, _cx| {
                responder.respond(ReleaseTerminalResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async move |cx: ConnectionTo<Agent>| {
            let init = cx
                .send_request(
                    InitializeRequest::new(ProtocolVersion::V1).client_capabilities(
                        ClientCapabilities::new()
                            .fs(FileSystemCapabilities::new()
                                .read_text_file(offer_fs)
                                .write_text_file(offer_fs))
                            .terminal(offer_terminal),
                    ),
                )
                .block_task()
                .await?;
            assert!(
                init.agent_capabilities.load_session,
                "load session is offered"
            );
            main(cx).await
        })
        .await
        .expect("the ACP conversation");
    // The client closed stdin: the agent ends its runs and exits.
    let status = tokio::time::timeout(LONG, child.wait())
        .await
        .expect("the agent exits once the client closes")
        .expect("wait");
    assert!(status.success(), "exit status {status}");
    result
}

async fn new_session(cx: &ConnectionTo<Agent>, cwd: &Path) -> String {
    let r = cx
        .send_request(NewSessionRequest::new(cwd.to_path_buf()))
        .block_task()
        .await
        .expect("session/new");
    r.session_id.0.to_string()
}

async fn prompt(cx: &ConnectionTo<Agent>, session: &str, text: &str) -> StopReason {
    let req = PromptRequest::new(
        session.to_string(),
        vec![ContentBlock::Text(TextContent::new(text))],
    );
    tokio::time::timeout(LONG, cx.send_request(req).block_task())
        .await
        .expect("the prompt turn ends")
        .expect("session/prompt")
        .stop_reason
}

#[actix_web::test]
async fn a_prompt_reads_and_edits_a_file_allowed_once() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<get path="a.txt"/><update status="102">reading</update>"#.into()),
        Reply::Content(
            r#"<set path="a.txt">new text</set><update status="102">editing</update>"#.into(),
        ),
        Reply::Content(r#"<update status="200">edited a.txt</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "old text");
    let shared = Shared::default();
    seen(&shared).answers.push_back("allow_once".into());
    let cwd = place.cwd();
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "change a.txt").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        place.file("a.txt").as_deref(),
        Some("new text"),
        "allowed and written"
    );
    assert_eq!(seen(&shared).permissions.len(), 1, "one permission request");
    let kinds = tool_kinds(&shared);
    assert!(kinds.contains(&ToolKind::Read), "{kinds:?}");
    assert!(kinds.contains(&ToolKind::Edit), "{kinds:?}");
    assert!(
        messages(&shared).contains("edited a.txt"),
        "{}",
        messages(&shared)
    );
}

#[actix_web::test]
async fn a_rejected_edit_then_allow_always_asks_no_more() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<set path="a.txt">no</set><update status="102">try</update>"#.into()),
        Reply::Content(r#"<update status="200">gave up</update>"#.into()),
        Reply::Content(r#"<set path="b.txt">B</set><update status="102">b</update>"#.into()),
        Reply::Content(r#"<set path="c.txt">C</set><update status="102">c</update>"#.into()),
        Reply::Content(r#"<update status="200">wrote both</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "keep");
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.answers.push_back("reject_once".into());
        s.answers.push_back("allow_always".into());
    }
    let cwd = place.cwd();
    let (first, second) = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let first = prompt(&cx, &session, "change a.txt").await;
            let second = prompt(&cx, &session, "now write b and c").await;
            Ok((first, second))
        },
    )
    .await;
    assert_eq!((first, second), (StopReason::EndTurn, StopReason::EndTurn));
    assert_eq!(place.file("a.txt").as_deref(), Some("keep"), "rejected");
    assert_eq!(place.file("b.txt").as_deref(), Some("B"));
    assert_eq!(
        place.file("c.txt").as_deref(),
        Some("C"),
        "accepted without asking"
    );
    assert_eq!(
        seen(&shared).permissions.len(),
        2,
        "allow always needs no further permission requests"
    );
}

#[actix_web::test]
async fn a_cancel_mid_turn_stops_with_cancelled() {
    let provider = FakeProvider::start(vec![Reply::Delayed(
        Duration::from_secs(30),
        r#"<update status="200">too late</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let calls = {
        let p = &provider;
        move || p.calls().iter().filter(|c| c.contains("chat")).count()
    };
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        Shared::default(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let req = PromptRequest::new(
                session.clone(),
                vec![ContentBlock::Text(TextContent::new("take your time"))],
            );
            let pending = cx.send_request(req).block_task();
            // Cancel once the model is working on it.
            let deadline = tokio::time::Instant::now() + LONG;
            while calls() == 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            cx.send_notification(CancelNotification::new(session))?;
            let r = tokio::time::timeout(LONG, pending)
                .await
                .expect("the turn ends")?;
            Ok(r.stop_reason)
        },
    )
    .await;
    assert_eq!(stop, StopReason::Cancelled);
}

#[actix_web::test]
async fn the_turn_cap_is_max_turn_requests() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="102">more</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let mut vars = test_vars(place.home.path(), &provider.base_url());
    vars.push(("RUMMY_MAX_TURNS".into(), "1".into()));
    let stop = with_agent(&vars, &cwd, Shared::default(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        Ok(prompt(&cx, &session, "go on forever").await)
    })
    .await;
    assert_eq!(stop, StopReason::MaxTurnRequests);
}

#[actix_web::test]
async fn with_fs_offered_the_edit_arrives_as_fs_write_text_file() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="a.txt">through the editor</set><update status="102">e</update>"#.into(),
        ),
        Reply::Content(r#"<update status="200">ok</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "before");
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.offer_fs = true;
        s.answers.push_back("allow_once".into());
    }
    let cwd = place.cwd();
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "edit a.txt").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let writes = seen(&shared).writes.clone();
    assert_eq!(
        writes,
        vec![(cwd.join("a.txt"), "through the editor".to_string())],
        "the accepted edit went to the client"
    );
}
