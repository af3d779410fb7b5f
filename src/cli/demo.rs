//! `rummy demo`: a newcomer's first minutes without a provider key. A whole
//! act loop runs offline in a fresh temporary project against the scripted
//! transcript in `examples/demo/` (labelled a replay on every line it
//! shows), through the same engine and driver as `rummy run`, accepting
//! each proposal and showing every turn's packet, entries and budget.
//! `--model ALIAS` runs the same task against a real configured provider.

use super::driver::{
    drive, proposal_tool, Decision, DriveOptions, Outcome, Policy, RunBackend, RunRequest, View,
};
use super::local::LocalBackend;
use super::progress::{
    budget_text, describe_proposal, distribution_text, proposal_diff, Progress, TurnEnds,
};
use super::replay::{ReplayProvider, Transcript, REPLAY_CONTEXT, REPLAY_PROVIDER};
use super::run::init_cli_logging;
use super::{CliError, EXIT_FAILED, EXIT_OK};
use crate::llm::ProviderRegistry;
use crate::protocol::notifications::{
    ProposedEntry, RunProgressNotification, RunResolvedNotification, RunStateNotification,
};
use crate::store::UpsertModel;
use crate::tools::Mode;
use crate::{Config, Server, StartOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The model alias the replay runs under.
const REPLAY_ALIAS: &str = "replay";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Run the same task against this configured model instead of the replay.
    #[arg(long, value_name = "ALIAS")]
    pub model: Option<String>,
}

/// Prints the run as it goes: stdout carries the story, stderr the spinner.
struct DemoView {
    /// `[replay] ` or `[demo] `, before every stdout line.
    prefix: String,
    progress: Progress,
    ends: TurnEnds,
}

impl DemoView {
    fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        for line in text.lines() {
            let _ = writeln!(out, "{}{line}", self.prefix);
        }
        let _ = out.flush();
    }
}

impl DemoView {
    /// One finished turn: its packet, entries, budget and update.
    fn report(&self, s: &RunStateNotification) {
        let t = &s.telemetry;
        let mut text = format!("── turn {} · status {} ──\n", s.turn, s.status);
        text.push_str(&format!("packet: {}\n", distribution_text(t)));
        text.push_str("entries this turn:\n");
        let mut update = None;
        for h in s.history.iter().filter(|h| h.turn == s.turn) {
            let state = serde_json::to_value(h.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            text.push_str(&format!("  {:<48} {state}\n", h.path));
            if proposal_tool(&h.path) == "update" {
                update = Some(h.body.clone());
            }
        }
        text.push_str(&format!(
            "budget: {}; run total {} prompt + {} completion tokens\n",
            budget_text(t),
            t.prompt_tokens,
            t.completion_tokens
        ));
        if let Some(u) = update {
            text.push_str(&format!("update: {u}\n"));
        }
        self.say(&text);
    }
}

impl View for DemoView {
    fn started(&mut self, alias: &str, backend: &str) {
        self.say(&format!("run {alias} started on {backend}"));
        self.progress.started(alias, backend);
    }

    fn progress(&mut self, p: &RunProgressNotification) {
        for done in self.ends.turn(p.turn) {
            self.report(&done);
        }
        self.progress.progress(p);
    }

    fn state(&mut self, s: &RunStateNotification) {
        self.progress.state(s);
        for done in self.ends.state(s) {
            self.report(&done);
        }
    }

    fn decided(&mut self, p: &ProposedEntry, decision: &Decision, how: &str) {
        self.progress.decided(p, decision, how);
        let word = match decision {
            Decision::Accept(_) => "accepted",
            Decision::Reject(_) => "rejected",
        };
        let mut text = format!("proposal {word}: {}\n", describe_proposal(p));
        if let Some(diff) = proposal_diff(p) {
            for line in diff.lines() {
                text.push_str(&format!("    {line}\n"));
            }
        }
        self.say(&text);
    }

    fn resolved(&mut self, r: &RunResolvedNotification) {
        self.progress.resolved(r);
    }

    fn note(&mut self, text: &str) {
        self.say(text);
    }

    fn pause(&mut self) {
        self.progress.pause();
    }

    fn resume(&mut self) {
        self.progress.resume();
    }
}

/// `rummy demo`.
pub fn main(args: DemoArgs) -> ExitCode {
    let code = match demo(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rummy demo: {e}");
            e.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

fn failed(what: &str) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Failed(format!("{what}: {e}"))
}

/// The fresh directory: `project/` with the transcript's files, `home/`
/// and the database. It is kept after the demo so it can be inspected.
fn prepare(transcript: &Transcript) -> Result<PathBuf, CliError> {
    let dir = tempfile::Builder::new()
        .prefix("rummy-demo-")
        .tempdir()
        .map_err(failed("cannot make a temporary directory"))?
        .keep();
    let project = dir.join("project");
    for (rel, body) in &transcript.files {
        let path = project.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed("cannot write the demo project"))?;
        }
        std::fs::write(&path, body).map_err(failed("cannot write the demo project"))?;
    }
    std::fs::create_dir_all(&project).map_err(failed("cannot write the demo project"))?;
    Ok(dir)
}

fn demo(args: DemoArgs) -> Result<u8, CliError> {
    let transcript = Transcript::demo()
        .map_err(|e| CliError::Failed(format!("the shipped demo transcript is broken: {e}")))?;
    let replay = args.model.is_none();
    let configured = match &args.model {
        // No settings at all: a fresh machine needs no provider or model.
        None => None,
        Some(m) => {
            let config = Config::load()
                .map_err(|e| CliError::Failed(format!("configuration error: {e}")))?;
            if !config.models.iter().any(|c| &c.alias == m) {
                return Err(CliError::Usage(format!(
                    "model {m} is not configured: set RUMMY_MODEL_{m}=<provider>/<model>"
                )));
            }
            Some(config)
        }
    };
    let dir = prepare(&transcript)?;
    let home = dir.join("home");
    let db = dir.join("rummy.db");
    let mut config = match configured {
        Some(config) => config,
        None => Config::from_vars([
            ("RUMMY_HOME", home.display().to_string()),
            ("RUMMY_DB_PATH", db.display().to_string()),
        ])
        .map_err(|e| CliError::Failed(format!("configuration error: {e}")))?,
    };
    init_cli_logging();
    // The demo's own place, whatever the settings say.
    config.home = home;
    config.db_path = db.clone();
    let model = args.model.clone().unwrap_or_else(|| REPLAY_ALIAS.into());
    let mut providers = ProviderRegistry::from_config(&config);
    if replay {
        providers.insert(Arc::new(ReplayProvider::new(
            &transcript,
            config.token_divisor,
        )));
    }
    let prefix = if replay { "[replay] " } else { "[demo] " };
    let view = DemoView {
        prefix: prefix.to_string(),
        progress: Progress::new(if replay {
            "rummy demo (replay)"
        } else {
            "rummy demo"
        }),
        ends: TurnEnds::default(),
    };
    let request = RunRequest {
        model,
        mode: Mode::parse(&transcript.mode).unwrap_or(Mode::Act),
        prompt: transcript.prompt.clone(),
        yolo: false,
    };
    let system = actix::System::new();
    system.block_on(run_demo(
        config,
        providers,
        &transcript,
        request,
        view,
        &dir,
        replay,
    ))
}

async fn run_demo(
    config: Config,
    providers: ProviderRegistry,
    transcript: &Transcript,
    request: RunRequest,
    mut view: DemoView,
    dir: &Path,
    replay: bool,
) -> Result<u8, CliError> {
    let db = config.db_path.clone();
    let server = Server::start(
        config,
        StartOptions {
            listen: false,
            tools: None,
            providers: Some(providers),
        },
    )
    .await
    .map_err(|e| CliError::Failed(e.to_string()))?;
    if replay {
        server
            .store
            .run(UpsertModel {
                alias: REPLAY_ALIAS.into(),
                actual: format!("{REPLAY_PROVIDER}/{}", transcript.name),
                context_length: Some(REPLAY_CONTEXT),
            })
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let project = dir.join("project");
    if replay {
        view.say("This is a REPLAY of examples/demo/transcript.json: no model is called and no key is needed.");
    } else {
        view.say(&format!(
            "Running the demo task against model {}.",
            request.model
        ));
    }
    view.say(&format!(
        "project: {} (a fresh temporary directory)",
        project.display()
    ));
    view.say(&format!(
        "task ({} mode): {}",
        request.mode.as_str(),
        request.prompt
    ));
    let mut backend = LocalBackend::open(server, &project).await?;
    let options = DriveOptions {
        policy: Policy::AcceptAll,
        timeout: None,
    };
    let outcome = drive(&mut backend, &request, &options, &mut view).await;
    view.progress.finish();
    backend.close().await;
    let code = match outcome? {
        Outcome::Ended(end) => {
            view.say(&format!(
                "finished with status {}: {}",
                end.status,
                end.summary.as_deref().unwrap_or("(no summary)")
            ));
            if end.status == 200 {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
        Outcome::TimedOut | Outcome::Interrupted => EXIT_FAILED,
    };
    if let Ok(body) = std::fs::read_to_string(project.join("hello.py")) {
        view.say("hello.py now reads:");
        view.say(
            &body
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>(),
        );
    }
    view.say(&format!("database: {}", db.display()));
    view.say(&format!(
        "look inside: rummy inspect --db {} runs   (then: run ALIAS, turn ALIAS 1 --packet, entries ALIAS)",
        db.display()
    ));
    view.say(&format!(
        "the demo's files stay in {}; delete it when done",
        dir.display()
    ));
    if replay {
        view.say("Next: point rummy at a provider (README, \"Pointing it at a provider\"), then try `rummy demo --model ALIAS`, `rummy run` or `rummy serve`.");
    }
    Ok(code)
}
