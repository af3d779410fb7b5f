//! The run service: the one typed API for a run's lifecycle. The JSON-RPC
//! handlers, embedding programs (through `ServerHandle`) and later front
//! ends (`rummy run`, ACP) all call it; none of them holds run logic.
//! Every message for a run travels through the `RunRegistry`.

use super::actor::{Abort, Enqueue, Inject, Resolve, Resume, RunActorError};
use super::proposals::{ResolveError, Settled};
use super::registry::{AbortAllRuns, ActiveRunActors, RunRegistry, ToRun};
use super::{Engine, LoopFlags};
use crate::store::{
    ActiveLoop, ConfigureRun as StoreConfigureRun, CreateRun, EntryState, GetEntry, GetModel,
    GetRun, GetRunById, LoopRow, RenameRun, RunRow, RunStatus, StoreError, RESOLUTION_ATTR,
};
use crate::tools::Mode;
use actix::prelude::*;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the run service refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum RunServiceError {
    /// A setting out of range; `field` is its wire name.
    #[error("{field} {problem}")]
    BadSetting {
        field: &'static str,
        problem: &'static str,
    },
    #[error(
        "Unknown model alias '{0}'. Define RUMMY_MODEL_{0} in your environment or call addModel."
    )]
    UnknownModel(String),
    /// The model's provider is not configured.
    #[error("{0}")]
    Provider(String),
    #[error("Run '{0}' not found.")]
    NotFound(String),
    #[error("run '{0}' has no running loop")]
    NotRunning(String),
    #[error("run '{0}' is already running")]
    AlreadyRunning(String),
    #[error("Run '{0}' is working; rename it once it has stopped.")]
    Busy(String),
    #[error(
        "'{0}' is not a usable run alias: it must be non-empty, without '/' or control characters."
    )]
    BadName(String),
    /// A resolution for an entry that is not waiting on a decision.
    #[error("{path} is not a pending proposal of run '{run}'{why}")]
    NotPending {
        run: String,
        path: String,
        why: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run actor unavailable: {0}")]
    Unavailable(String),
}

impl RunServiceError {
    /// True when the caller's request was at fault (not the server).
    pub fn is_caller_error(&self) -> bool {
        match self {
            RunServiceError::Store(e) => {
                matches!(e, StoreError::NotFound(_) | StoreError::Invalid(_))
            }
            RunServiceError::Unavailable(_) => false,
            _ => true,
        }
    }
}

impl From<RunActorError> for RunServiceError {
    fn from(e: RunActorError) -> Self {
        match e {
            RunActorError::NotRunning(alias) => RunServiceError::NotRunning(alias),
            RunActorError::AlreadyRunning(alias) => RunServiceError::AlreadyRunning(alias),
            RunActorError::Store(e) => RunServiceError::Store(e),
        }
    }
}

impl From<MailboxError> for RunServiceError {
    fn from(e: MailboxError) -> Self {
        RunServiceError::Unavailable(e.to_string())
    }
}

pub type RunResult<T> = Result<T, RunServiceError>;

/// Settings kept on the run itself (a fork inherits the ones it omits).
#[derive(Debug, Clone, Default)]
pub struct RunSettings {
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
}

/// A new run with its first prompt.
#[derive(Debug, Clone)]
pub struct StartRun {
    pub project_id: i64,
    /// None: `{model}_{milliseconds}`.
    pub alias: Option<String>,
    pub model: String,
    pub mode: Mode,
    pub prompt: String,
    pub settings: RunSettings,
    pub flags: LoopFlags,
}

/// Another prompt for an existing run. While a loop runs with the same
/// mode and flags, the prompt steers it (it joins the loop's next turn);
/// otherwise, or with `queue`, it is the run's next loop. `flags.temperature`
/// applies to that loop only and is checked like a start's.
#[derive(Debug, Clone)]
pub struct ContinueRun {
    pub project_id: i64,
    pub alias: String,
    pub mode: Mode,
    pub prompt: String,
    pub flags: LoopFlags,
    /// Always queue a new loop (the FIFO), never steer.
    pub queue: bool,
}

/// A steered prompt may join the running loop only if it asks for nothing
/// that loop does not already have, so an act prompt never widens an ask
/// loop (omitted settings inherit the loop's).
fn joins(active: &LoopRow, mode: Mode, flags: &LoopFlags) -> bool {
    let running: LoopFlags = active
        .config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let same =
        |asked: Option<bool>, has: Option<bool>| asked.is_none_or(|a| a == has.unwrap_or(false));
    active.mode == mode.as_str()
        && same(flags.no_repo, running.no_repo)
        && same(flags.no_interaction, running.no_interaction)
        && same(flags.no_web, running.no_web)
        && same(flags.no_proposals, running.no_proposals)
        && same(flags.yolo, running.yolo)
        && flags
            .temperature
            .is_none_or(|t| running.temperature == Some(t))
}

/// New stored settings for a run's next loops; `None` keeps a setting.
#[derive(Debug, Clone, Default)]
pub struct ConfigureRun {
    pub project_id: i64,
    pub alias: String,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub persona: Option<String>,
    pub context_limit: Option<i64>,
    /// Flags to change (omitted ones keep their stored value).
    pub flags: Option<LoopFlags>,
}

/// A child run that starts from its parent's views.
#[derive(Debug, Clone)]
pub struct ForkRun {
    pub project_id: i64,
    pub parent: String,
    /// None: the parent's model.
    pub model: Option<String>,
    pub mode: Mode,
    pub prompt: String,
    pub settings: RunSettings,
    pub flags: LoopFlags,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub alias: String,
    /// False when nothing was running: nothing changed.
    pub was_running: bool,
}

#[derive(Clone)]
pub struct RunService {
    engine: Arc<Engine>,
    registry: Addr<RunRegistry>,
}

/// The millisecond stamp of a generated alias (`{model}_{stamp}`, as
/// upstream), made strictly increasing so that runs started in the same
/// millisecond (hundreds at once under load) still get distinct aliases.
fn alias_stamp() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(now_millis()).unwrap_or(u64::MAX);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn check_temperature(t: Option<f64>) -> RunResult<()> {
    match t {
        Some(t) if !(0.0..=2.0).contains(&t) => Err(RunServiceError::BadSetting {
            field: "temperature",
            problem: "must be between 0 and 2",
        }),
        _ => Ok(()),
    }
}

fn check_settings(s: &RunSettings) -> RunResult<()> {
    check_temperature(s.temperature)?;
    match s.context_limit {
        Some(l) if l < 1024 => Err(RunServiceError::BadSetting {
            field: "contextLimit",
            problem: "must be at least 1024",
        }),
        _ => Ok(()),
    }
}

fn check_flags(flags: &LoopFlags) -> RunResult<()> {
    check_temperature(flags.temperature)
}

impl RunService {
    /// Starts the registry; one service per server.
    pub fn start(engine: Arc<Engine>) -> RunService {
        let registry = RunRegistry::new(engine.clone()).start();
        RunService { engine, registry }
    }

    /// The registry, for programs that send run messages directly.
    pub fn registry(&self) -> &Addr<RunRegistry> {
        &self.registry
    }

    /// A run of this project by alias.
    pub async fn find(&self, project_id: i64, alias: &str) -> RunResult<Option<RunRow>> {
        Ok(self
            .engine
            .store
            .run(GetRun {
                alias: alias.to_string(),
                project_id: Some(project_id),
            })
            .await?)
    }

    async fn require(&self, project_id: i64, alias: &str) -> RunResult<RunRow> {
        self.find(project_id, alias)
            .await?
            .ok_or_else(|| RunServiceError::NotFound(alias.to_string()))
    }

    /// Checks the model alias and its provider before anything exists, so
    /// a bad request never leaves a run stuck at 102 (upstream's defect).
    async fn check_model(&self, model: &str) -> RunResult<()> {
        let row = self
            .engine
            .store
            .run(GetModel(model.to_string()))
            .await?
            .ok_or_else(|| RunServiceError::UnknownModel(model.to_string()))?;
        self.engine
            .providers
            .resolve(&row.actual)
            .map(|_| ())
            .map_err(|e| RunServiceError::Provider(e.to_string()))
    }

    /// Creates a run and queues its first loop.
    pub async fn start_run(&self, req: StartRun) -> RunResult<RunRow> {
        self.create(req, None).await
    }

    /// Queues the run's next loop with its own mode and flags.
    pub async fn continue_run(&self, req: ContinueRun) -> RunResult<RunRow> {
        check_flags(&req.flags)?;
        let run = self.require(req.project_id, &req.alias).await?;
        // A run waiting on a proposal keeps waiting: the prompt is its next
        // loop, never part of the turn that is waiting.
        if !req.queue && run.status != RunStatus::Proposed {
            let active = self.engine.store.run(ActiveLoop(run.id)).await?;
            if active.is_some_and(|lp| joins(&lp, req.mode, &req.flags)) {
                let steer = Inject {
                    mode: req.mode,
                    prompt: req.prompt.clone(),
                    flags: req.flags.clone(),
                };
                match self.to_run(&run, steer).await? {
                    Ok(()) => return Ok(run),
                    // The loop ended meanwhile: the prompt starts the next one.
                    Err(RunActorError::NotRunning(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // A new loop takes the run's stored flags for the ones it omits.
        let flags = req.flags.inherit(&LoopFlags::stored(&run));
        self.enqueue(&run, req.mode, req.prompt, flags).await?;
        Ok(run)
    }

    /// Creates a child of an existing run and queues its first loop.
    pub async fn fork(&self, req: ForkRun) -> RunResult<RunRow> {
        let parent = self.require(req.project_id, &req.parent).await?;
        let model = req
            .model
            .filter(|m| !m.is_empty())
            .or_else(|| parent.model.clone())
            .unwrap_or_default();
        let start = StartRun {
            project_id: req.project_id,
            alias: None,
            model,
            mode: req.mode,
            prompt: req.prompt,
            settings: req.settings,
            flags: req.flags,
        };
        self.create(start, Some(&parent)).await
    }

    async fn create(&self, req: StartRun, parent: Option<&RunRow>) -> RunResult<RunRow> {
        self.check_model(&req.model).await?;
        check_settings(&req.settings)?;
        check_flags(&req.flags)?;
        let settings = RunSettings {
            temperature: req
                .settings
                .temperature
                .or(parent.and_then(|p| p.temperature)),
            persona: req
                .settings
                .persona
                .clone()
                .or(parent.and_then(|p| p.persona.clone())),
            context_limit: req
                .settings
                .context_limit
                .or(parent.and_then(|p| p.context_limit)),
        };
        // A fork keeps its parent's flags unless it names its own.
        let flags = match parent {
            Some(p) => req.flags.clone().inherit(&LoopFlags::stored(p)),
            None => req.flags.clone(),
        };
        let generated = req.alias.is_none();
        let mut alias = req
            .alias
            .clone()
            .unwrap_or_else(|| format!("{}_{}", req.model, alias_stamp()));
        let mut attempt = 0u32;
        let run = loop {
            let created = self
                .engine
                .store
                .run(CreateRun {
                    project_id: req.project_id,
                    parent_run_id: parent.map(|p| p.id),
                    alias: alias.clone(),
                    model: req.model.clone(),
                    temperature: settings.temperature,
                    persona: settings.persona.clone(),
                    context_limit: settings.context_limit,
                    prompt: req.prompt.clone(),
                    flags: flags.to_stored(),
                })
                .await;
            match created {
                Ok(run) => break run,
                // Stamps are unique in this process; an alias taken by
                // another one (or an older run) takes the next stamp.
                Err(StoreError::Invalid(_)) if generated && attempt < 8 => {
                    attempt += 1;
                    alias = format!("{}_{}", req.model, alias_stamp());
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.enqueue(&run, req.mode, req.prompt, flags).await?;
        Ok(run)
    }

    async fn enqueue(
        &self,
        run: &RunRow,
        mode: Mode,
        prompt: String,
        flags: LoopFlags,
    ) -> RunResult<()> {
        let msg = Enqueue {
            mode,
            prompt,
            model: run.model.clone(),
            flags,
        };
        self.to_run(run, msg).await?.map_err(Into::into)
    }

    async fn to_run<M>(&self, run: &RunRow, msg: M) -> RunResult<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send + 'static,
        super::actor::RunActor: Handler<M>,
    {
        Ok(self
            .registry
            .send(ToRun {
                run_id: run.id,
                alias: run.alias.clone(),
                msg,
            })
            .await??)
    }

    /// Takes up a run a restart interrupted while it waited on a proposal
    /// (boot calls this for each run recovery left waiting).
    pub async fn resume(&self, run_id: i64) -> RunResult<()> {
        let run = self.engine.store.run(GetRunById(run_id)).await?;
        let interrupted = self
            .engine
            .store
            .run(ActiveLoop(run.id))
            .await?
            .ok_or_else(|| RunServiceError::NotRunning(run.alias.clone()))?;
        self.to_run(&run, Resume { interrupted }).await??;
        Ok(())
    }

    /// Cancels the run from any client of its project: the running loop is
    /// dropped at once and queued loops end 499. A run with nothing in
    /// flight is left exactly as it is.
    pub async fn cancel(&self, project_id: i64, alias: &str, reason: &str) -> RunResult<Cancelled> {
        let run = self.require(project_id, alias).await?;
        let was_running = self
            .to_run(
                &run,
                Abort {
                    reason: reason.to_string(),
                },
            )
            .await??;
        Ok(Cancelled {
            alias: run.alias,
            was_running,
        })
    }

    /// Hands a decision on a proposal, from any client of the project, to
    /// the run's waiting loop and answers how it went. An entry that is not
    /// pending (already settled, or never a proposal) changes nothing.
    pub async fn resolve(
        &self,
        project_id: i64,
        alias: &str,
        mut resolve: Resolve,
    ) -> RunResult<Settled> {
        let run = self.require(project_id, alias).await?;
        let not_pending = |why: String| RunServiceError::NotPending {
            run: run.alias.clone(),
            path: resolve.path.clone(),
            why,
        };
        let row = self
            .engine
            .store
            .run(GetEntry {
                run_id: run.id,
                path: resolve.path.clone(),
            })
            .await?;
        match row {
            None => return Err(not_pending(": there is no such entry".into())),
            Some(r) if r.state != EntryState::Proposed => {
                let settled = serde_json::from_str::<serde_json::Value>(&r.attributes)
                    .ok()
                    .and_then(|a| a.get(RESOLUTION_ATTR)?.as_str().map(str::to_string));
                let why = match settled {
                    Some(how) => format!(": it was already settled ({how})"),
                    None => format!(": its state is {}", r.state),
                };
                return Err(not_pending(why));
            }
            Some(_) => {}
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        resolve.reply = Some(tx);
        let path = resolve.path.clone();
        self.to_run(&run, resolve).await??;
        match rx.await {
            Ok(Ok(settled)) => Ok(settled),
            Ok(Err(ResolveError::NotPending(_))) => Err(RunServiceError::NotPending {
                run: run.alias.clone(),
                path,
                why: ": it was settled meanwhile".into(),
            }),
            Ok(Err(ResolveError::Failed(e))) => Err(RunServiceError::Unavailable(e)),
            // The loop ended (cancelled) before it took the decision.
            Err(_) => Err(RunServiceError::NotPending {
                run: run.alias.clone(),
                path,
                why: ": the run stopped waiting".into(),
            }),
        }
    }

    /// Changes the run's stored settings for its next loops, from any
    /// client of the project. Flags merge into the stored ones; a loop
    /// already running keeps what it started with.
    pub async fn configure(&self, req: ConfigureRun) -> RunResult<RunRow> {
        check_settings(&RunSettings {
            temperature: req.temperature,
            persona: None,
            context_limit: req.context_limit,
        })?;
        if let Some(model) = &req.model {
            self.check_model(model).await?;
        }
        let run = self.require(req.project_id, &req.alias).await?;
        let flags = req
            .flags
            .map(|f| f.inherit(&LoopFlags::stored(&run)).to_stored());
        Ok(self
            .engine
            .store
            .run(StoreConfigureRun {
                run_id: run.id,
                model: req.model,
                temperature: req.temperature,
                persona: req.persona,
                context_limit: req.context_limit,
                flags,
            })
            .await?)
    }

    /// Gives a run a new alias (`run/rename`, `mv run://a run://b`). A run
    /// with work in flight keeps its name: its notifications carry it.
    pub async fn rename(&self, project_id: i64, alias: &str, to: &str) -> RunResult<RunRow> {
        let to = to.trim();
        if to.is_empty() || to.chars().any(|c| c.is_control() || c == '/') {
            return Err(RunServiceError::BadName(to.to_string()));
        }
        let run = self.require(project_id, alias).await?;
        if matches!(
            run.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::Proposed
        ) {
            return Err(RunServiceError::Busy(run.alias));
        }
        if to == run.alias {
            return Ok(run);
        }
        Ok(self
            .engine
            .store
            .run(RenameRun {
                run_id: run.id,
                to: to.to_string(),
            })
            .await?)
    }

    /// Ends every run in flight 499 (server shutdown).
    pub async fn abort_all(&self, reason: &str) {
        let _ = self
            .registry
            .send(AbortAllRuns {
                reason: reason.to_string(),
            })
            .await;
    }

    /// How many run actors are alive; idle runs are forgotten.
    pub async fn active_actors(&self) -> usize {
        self.registry.send(ActiveRunActors).await.unwrap_or(0)
    }
}

#[cfg(test)]
mod alias_tests {
    #[test]
    fn generated_alias_stamps_never_repeat() {
        let stamps: Vec<u64> = (0..1000).map(|_| super::alias_stamp()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    }
}
