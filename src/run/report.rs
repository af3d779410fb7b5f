//! The `run/state` payload and the `getRun` detail, built from the store
//! into their protocol types.

use super::caches::RunCaches;
use super::Engine;
use crate::context::tokens::ceiling;
use crate::protocol::notifications::{
    ContextBucket, ProposedEntry, RunLogItem, RunStateNotification, RunTelemetry, UnknownItem,
};
use crate::protocol::runs::{
    GetRunResult, RunContext, RunHistoryItem, RunSummary, RunUsage, TurnText,
};
use crate::store::{
    Bucket, GetModel, HistoryRow, PathBody, PendingProposals, ReportRun, RunListItem, RunReport,
    RunRow, RunStatus, StoreError,
};
use serde_json::Value;

/// Facts only a turn that just got a provider reply knows.
#[derive(Debug, Clone, Default)]
pub struct FreshTurn {
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub assembled_tokens: i64,
}

impl From<HistoryRow> for RunLogItem {
    fn from(h: HistoryRow) -> Self {
        RunLogItem {
            tool: h.tool,
            state: h.state,
            outcome: h.outcome,
            path: h.path,
            body: h.body,
            turn: h.turn,
            attributes: h.attributes,
        }
    }
}

impl From<HistoryRow> for RunHistoryItem {
    fn from(h: HistoryRow) -> Self {
        // getRun parses what run/state sends as a string; text that is not
        // JSON (never written by the store) reads as null.
        let attributes = serde_json::from_str::<Value>(&h.attributes).ok();
        RunHistoryItem {
            tool: h.tool,
            path: h.path,
            body: h.body,
            attributes,
            turn: h.turn,
        }
    }
}

impl From<PathBody> for UnknownItem {
    fn from(p: PathBody) -> Self {
        UnknownItem {
            path: p.path,
            body: p.body,
        }
    }
}

impl From<PathBody> for TurnText {
    fn from(p: PathBody) -> Self {
        TurnText {
            path: p.path,
            body: p.body,
            turn: p.turn,
        }
    }
}

impl From<Bucket> for ContextBucket {
    fn from(b: Bucket) -> Self {
        ContextBucket {
            bucket: b.bucket,
            tokens: b.tokens,
            entries: b.entries,
        }
    }
}

impl From<RunListItem> for RunSummary {
    fn from(r: RunListItem) -> Self {
        RunSummary {
            run: r.run,
            status: r.status.into(),
            turn: r.turn,
            summary: r.summary,
            created: r.created,
        }
    }
}

/// Builds `run/state` params for a run at a turn and status. `caches` are
/// the turn loop's (`None`: read everything from the tables).
pub async fn run_state(
    engine: &Engine,
    run: &RunRow,
    turn: i64,
    status: RunStatus,
    fresh: Option<&FreshTurn>,
    caches: Option<&RunCaches>,
) -> Result<RunStateNotification, StoreError> {
    if engine.config.transcripts && fresh.is_some() {
        // run/state with a fresh turn is sent once per provider reply: the
        // one point after every turn's audit entries exist.
        transcript::write_turn(engine, run, turn).await;
    }
    let report: RunReport = engine
        .store
        .run(ReportRun {
            run_id: run.id,
            turn,
            token_divisor: engine.config.token_divisor,
            scan: caches.map(RunCaches::scan),
            saved: caches.map(RunCaches::saved),
        })
        .await?;
    let alias = run.model.clone().unwrap_or_default();
    let model = engine.store.run(GetModel(alias.clone())).await?;
    let context_size = model.and_then(|m| m.context_length);
    let context_size = match (context_size, run.context_limit) {
        (Some(c), Some(l)) => Some(c.min(l)),
        (c, l) => c.or(l),
    };
    let token_usage = match (report.usage.last_context_tokens, fresh) {
        (n, _) if n > 0 => n,
        (_, Some(f)) => f.assembled_tokens,
        _ => 0,
    };
    let ceil = context_size.map(|c| ceiling(c, engine.config.budget_ceiling));
    let u = &report.usage;
    let telemetry = RunTelemetry {
        model: fresh
            .and_then(|f| f.model.clone())
            .unwrap_or_else(|| alias.clone()),
        model_alias: alias,
        temperature: fresh.and_then(|f| f.temperature),
        context_size,
        context_tokens: token_usage,
        ceiling: ceil,
        token_usage,
        tokens_free: ceil.map(|c| (c - token_usage).max(0)),
        prompt_tokens: u.prompt_tokens,
        cached_tokens: u.cached_tokens,
        completion_tokens: u.completion_tokens,
        reasoning_tokens: u.reasoning_tokens,
        total_tokens: u.total_tokens,
        cost: u.cost,
        context_distribution: report.distribution.into_iter().map(Into::into).collect(),
    };
    Ok(RunStateNotification {
        run: run.alias.clone(),
        turn,
        status: status.into(),
        summary: report.summary,
        history: report.history.into_iter().map(Into::into).collect(),
        unknowns: report.unknowns.into_iter().map(Into::into).collect(),
        telemetry,
    })
}

/// The `getRun` result.
pub async fn run_detail(engine: &Engine, run: &RunRow) -> Result<GetRunResult, StoreError> {
    let report: RunReport = engine
        .store
        .run(ReportRun {
            run_id: run.id,
            turn: run.next_turn - 1,
            token_divisor: engine.config.token_divisor,
            scan: None,
            saved: None,
        })
        .await?;
    let pending = engine.store.run(PendingProposals(run.id)).await?;
    let u = &report.usage;
    Ok(GetRunResult {
        run: run.alias.clone(),
        turn: run.next_turn - 1,
        status: run.status.into(),
        model: run.model.clone(),
        temperature: run.temperature,
        persona: run.persona.clone(),
        context_limit: run.context_limit,
        context: RunContext {
            telemetry: RunUsage {
                prompt_tokens: u.prompt_tokens,
                cached_tokens: u.cached_tokens,
                completion_tokens: u.completion_tokens,
                reasoning_tokens: u.reasoning_tokens,
                total_tokens: u.total_tokens,
                cost: u.cost,
            },
            reasoning: report.reasoning.into_iter().map(Into::into).collect(),
            content: report.content.into_iter().map(Into::into).collect(),
            history: report.history.into_iter().map(Into::into).collect(),
        },
        last_user_prompt: report.last_prompt,
        last_summary: report.last_update,
        pending_proposals: pending
            .into_iter()
            .map(|row| ProposedEntry {
                path: row.path,
                body: row.body,
                attributes: row.attributes,
                turn: row.turn,
            })
            .collect(),
    })
}

/// `RUMMY_HOME` transcripts (spec 03 §7.3), written only with
/// `RUMMY_TRANSCRIPTS=1`: `turns/<run>/turn_NNN.txt` holds one turn's
/// exchange, read back from its audit entries (`system://N`, `user://N`,
/// `assistant://N`, `reasoning://N`, `model://N`); `last_run.txt` holds
/// every turn of the run that last took one. A failure only warns.
pub mod transcript {
    use crate::run::Engine;
    use crate::store::{GetEntry, RunRow};
    use std::path::Path;

    const RULE: &str = "============================================================";

    /// A run alias as a single safe directory name.
    pub fn dir_name(alias: &str) -> String {
        let name: String = alias
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        match name.as_str() {
            "" | "." | ".." => format!("run_{}", name.len()),
            _ => name,
        }
    }

    /// The text of one turn, or `None` when it got no reply.
    pub async fn turn_text(engine: &Engine, run: &RunRow, turn: i64) -> Option<String> {
        let body = |scheme: &'static str| {
            let store = engine.store.clone();
            let run_id = run.id;
            async move {
                store
                    .run(GetEntry {
                        run_id,
                        path: format!("{scheme}://{turn}"),
                    })
                    .await
                    .ok()
                    .flatten()
                    .map(|row| row.body)
            }
        };
        let assistant = body("assistant").await?;
        let model = run.model.clone().unwrap_or_default();
        let mut text = format!(
            "\n{RULE}\nTURN {turn} — model={model} run={}\n{RULE}",
            run.alias
        );
        for (label, scheme) in [("SYSTEM", "system"), ("USER", "user")] {
            if let Some(b) = body(scheme).await {
                text.push_str(&format!("\n\n--- {label} ---\n{b}"));
            }
        }
        text.push_str(&format!("\n\n--- ASSISTANT ---\n{assistant}"));
        if let Some(r) = body("reasoning").await {
            text.push_str(&format!("\n\n--- REASONING ---\n{r}"));
        }
        let usage = body("model")
            .await
            .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
            .and_then(|m| m.get("usage").cloned())
            .unwrap_or(serde_json::Value::Null);
        text.push_str(&format!("\n\n--- USAGE ---\n{usage}\n"));
        Some(text)
    }

    /// Writes one turn's transcript files.
    pub async fn write_turn(engine: &Engine, run: &RunRow, turn: i64) {
        let Some(text) = turn_text(engine, run, turn).await else {
            return;
        };
        let home = engine.config.home.clone();
        let alias = run.alias.clone();
        let written =
            tokio::task::spawn_blocking(move || write_files(&home, &alias, turn, &text)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not write the transcript of turn {turn}: {e}"),
            Err(e) => tracing::warn!("could not write the transcript of turn {turn}: {e}"),
        }
    }

    fn write_files(home: &Path, alias: &str, turn: i64, text: &str) -> std::io::Result<()> {
        use std::io::{BufRead, Write};
        let dir = home.join("turns").join(dir_name(alias));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("turn_{turn:03}.txt")), text)?;
        let header = format!("# rummy transcript of run {alias}");
        let last = home.join("last_run.txt");
        let same_run = std::fs::File::open(&last)
            .ok()
            .and_then(|f| std::io::BufReader::new(f).lines().next())
            .and_then(Result::ok)
            .is_some_and(|first| first == header);
        let mut file = if same_run {
            std::fs::OpenOptions::new().append(true).open(&last)?
        } else {
            let mut f = std::fs::File::create(&last)?;
            writeln!(f, "{header}")?;
            f
        };
        file.write_all(text.as_bytes())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn aliases_become_one_safe_directory() {
            assert_eq!(dir_name("fake_1795494248796"), "fake_1795494248796");
            assert_eq!(dir_name("../../etc"), ".._.._etc");
            assert_eq!(dir_name("a/b\\c"), "a_b_c");
            assert_eq!(dir_name(".."), "run_2");
            assert!(!dir_name("x/../y").contains('/'));
        }

        #[test]
        fn last_run_keeps_one_run_and_restarts_for_another() {
            let home = tempfile::tempdir().unwrap();
            write_files(home.path(), "a", 1, "one\n").unwrap();
            write_files(home.path(), "a", 2, "two\n").unwrap();
            let last = std::fs::read_to_string(home.path().join("last_run.txt")).unwrap();
            assert_eq!(last, "# rummy transcript of run a\none\ntwo\n");
            write_files(home.path(), "b", 1, "three\n").unwrap();
            let last = std::fs::read_to_string(home.path().join("last_run.txt")).unwrap();
            assert_eq!(last, "# rummy transcript of run b\nthree\n");
            let turn = home.path().join("turns/a/turn_002.txt");
            assert_eq!(std::fs::read_to_string(turn).unwrap(), "two\n");
        }
    }
}
