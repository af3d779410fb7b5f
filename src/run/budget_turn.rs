//! Budget enforcement inside a turn (spec 01 §8.5–§8.7): the pre-LLM check
//! with Prompt Demotion, and post-dispatch Turn Demotion. Every check
//! measures the messages it actually assembled, so no request larger than
//! the run's window ever reaches the provider.

use super::caches::RunCaches;
use super::Engine;
use crate::context::budget::{
    check_total, compute_budget, latest_prompt, overflow_body, pre_llm_message,
    predict_next_packet, Demoted,
};
use crate::context::{assemble, snapshot, DerivedRow, Packet, PacketInput};
use crate::store::{
    CachedModelContext, ChangeVisibility, DemoteRunVisibleEntries, DemoteTurnEntries, DemotedEntry,
    LogError, LoopRow, RunRow, SaveTurnContext, StoreError, TurnContextRow,
};
use crate::tokens::count_tokens;
use crate::tools::ToolSet;
use serde_json::{json, Map};
use std::sync::Arc;

/// Builds and stores a turn's packet; called at turn start, after a Prompt
/// Demotion and after dispatch (spec 01 §5).
pub struct Materializer<'a> {
    pub engine: &'a Engine,
    pub run: &'a RunRow,
    pub lp: &'a LoopRow,
    pub turn: i64,
    pub tool_set: ToolSet,
    pub context_size: Option<i64>,
    pub caches: &'a RunCaches,
}

fn err(e: StoreError) -> String {
    e.to_string()
}

impl Materializer<'_> {
    /// Reads the run's model context, assembles it and replaces the turn's
    /// `turn_context` snapshot.
    pub async fn packet(&self, usage_floor: i64) -> Result<Packet, String> {
        let rows = self.model_context().await?;
        let packet = assemble(&self.input(&rows, usage_floor));
        self.save(packet.rows.clone()).await?;
        Ok(packet)
    }

    /// Materializes without rendering messages: the snapshot is saved as
    /// `packet` saves it, and its rows are returned (post-dispatch).
    pub async fn rows(&self) -> Result<Arc<[TurnContextRow]>, String> {
        let rows = self.model_context().await?;
        let snapshot = snapshot(&self.input(&rows, 0));
        self.save(snapshot.clone()).await?;
        Ok(snapshot)
    }

    async fn model_context(&self) -> Result<Vec<Arc<DerivedRow>>, String> {
        // Output still buffered in the run's streams belongs in the packet.
        crate::stream::flush_run(self.engine, self.run.id).await;
        let rows = self
            .engine
            .store
            .run(CachedModelContext {
                run_id: self.run.id,
                cache: self.caches.context_rows(),
            })
            .await
            .map_err(err)?;
        Ok(self
            .caches
            .derive(rows, &self.engine.tools, self.engine.config.token_divisor))
    }

    fn input<'r>(&'r self, rows: &'r [Arc<DerivedRow>], usage_floor: i64) -> PacketInput<'r> {
        let config = &self.engine.config;
        PacketInput {
            rows,
            tools: &self.engine.tools,
            tool_set: self.tool_set,
            persona: self.run.persona.as_deref(),
            context_size: self.context_size,
            budget_ceiling: config.budget_ceiling,
            token_divisor: config.token_divisor,
            turn: self.turn,
            usage_floor,
        }
    }

    async fn save(&self, rows: Arc<[TurnContextRow]>) -> Result<(), String> {
        self.engine
            .store
            .run(SaveTurnContext {
                run_id: self.run.id,
                loop_id: self.lp.id,
                turn: self.turn,
                rows,
                token_divisor: self.engine.config.token_divisor,
                saved: Some(self.caches.saved()),
            })
            .await
            .map_err(err)
    }

    async fn emit_413(&self, message: String, demoted: &[Demoted]) -> Result<(), String> {
        let mut attributes = Map::new();
        attributes.insert("demotedCount".into(), json!(demoted.len()));
        attributes.insert(
            "demotedTokens".into(),
            json!(demoted.iter().map(|d| d.tokens).sum::<i64>()),
        );
        self.engine
            .store
            .run(LogError {
                run_id: self.run.id,
                turn: self.turn,
                loop_id: Some(self.lp.id),
                message,
                status: 413,
                attributes,
            })
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn summarize(&self, path: &str) -> Result<(), String> {
        self.engine
            .store
            .run(ChangeVisibility {
                run_id: self.run.id,
                pattern: path.to_string(),
                body_filter: None,
                visibility: "summarized".into(),
                promote_turn: None,
            })
            .await
            .map_err(err)?;
        Ok(())
    }
}

/// What the pre-LLM check decided.
pub enum Gate {
    /// Send this packet (possibly rebuilt after demotions). `struck` when a
    /// run-wide demotion wrote a 413 to get it under the ceiling.
    Send { packet: Packet, struck: bool },
    /// Nothing is sent: the turn takes a 413 strike. Carries the measured
    /// size of the packet that did not fit.
    Skip { measured: i64 },
}

/// The pre-LLM check (`hooks.budget.enforce`). The first check takes the
/// larger of our measure and the provider's count of the previous packet;
/// after any demotion the rebuilt messages are measured afresh (the
/// stale-measure fix), so a turn after an overflow is never held to an old
/// figure. Beyond upstream: when the prompt is not enough (or not ours to
/// demote), every visible entry is summarized before the turn gives up,
/// because a skipped turn changes nothing and the next would fail alike.
pub async fn pre_llm(m: &Materializer<'_>, iteration: u32, packet: Packet) -> Result<Gate, String> {
    let Some(size) = m.context_size else {
        return Ok(Gate::Send {
            packet,
            struck: false,
        });
    };
    let ratio = m.engine.config.budget_ceiling;
    let mut budget = compute_budget(size, ratio, packet.total_tokens);
    if budget.ok {
        return Ok(Gate::Send {
            packet,
            struck: false,
        });
    }
    let mut packet = packet;
    let mut after_prompt = false;
    if iteration == 1 {
        if let Some(prompt) = latest_prompt(&packet.rows).map(|r| r.path.clone()) {
            m.summarize(&prompt).await?;
            tracing::debug!(run = %m.run.alias, turn = m.turn, %prompt, "prompt demoted to fit the budget");
            packet = m.packet(0).await?;
            budget = compute_budget(size, ratio, packet.total_tokens);
            if budget.ok {
                return Ok(Gate::Send {
                    packet,
                    struck: false,
                });
            }
            after_prompt = true;
        }
    }
    let divisor = m.engine.config.token_divisor;
    let demoted: Vec<Demoted> = m
        .engine
        .store
        .run(DemoteRunVisibleEntries { run_id: m.run.id })
        .await
        .map_err(err)?
        .into_iter()
        .map(|d| Demoted {
            tokens: count_tokens(&d.body, divisor),
            path: d.path,
            turn: Some(d.turn),
        })
        .collect();
    if !demoted.is_empty() {
        m.emit_413(
            overflow_body(budget.overflow, budget.ceiling, &demoted),
            &demoted,
        )
        .await?;
        packet = m.packet(0).await?;
        budget = compute_budget(size, ratio, packet.total_tokens);
        if budget.ok {
            return Ok(Gate::Send {
                packet,
                struck: true,
            });
        }
    }
    m.emit_413(pre_llm_message(&budget, after_prompt), &[])
        .await?;
    Ok(Gate::Skip {
        measured: packet.assembled_tokens,
    })
}

/// The size a turn is recorded with (`turns.context_tokens`): the larger of
/// the provider's count of this packet and ours.
pub fn actual_tokens(prompt_tokens: i64, packet: &Packet) -> i64 {
    check_total(packet.assembled_tokens, Some(prompt_tokens))
}

/// Post-dispatch Turn Demotion (`hooks.budget.postDispatch`): predicts the
/// next packet from this turn's actual size plus what the turn added; over
/// the ceiling, demotes this turn's promotions (else every visible entry)
/// and the latest prompt, and writes the 413 that lists them. Returns
/// whether it struck.
pub async fn post_dispatch(m: &Materializer<'_>, actual: i64) -> Result<bool, String> {
    let Some(size) = m.context_size else {
        return Ok(false);
    };
    let config = &m.engine.config;
    let divisor = config.token_divisor;
    let rows = m.rows().await?;
    let predicted = predict_next_packet(&rows, m.turn, actual, divisor);
    let budget = compute_budget(size, config.budget_ceiling, predicted);
    if budget.ok {
        return Ok(false);
    }
    let store = &m.engine.store;
    let own: Vec<DemotedEntry> = store
        .run(DemoteTurnEntries {
            run_id: m.run.id,
            turn: m.turn,
        })
        .await
        .map_err(err)?;
    let demoted: Vec<Demoted> = if own.is_empty() {
        store
            .run(DemoteRunVisibleEntries { run_id: m.run.id })
            .await
            .map_err(err)?
            .into_iter()
            .map(|d| Demoted {
                tokens: count_tokens(&d.body, divisor),
                path: d.path,
                turn: Some(d.turn),
            })
            .collect()
    } else {
        own.into_iter()
            .map(|d| Demoted {
                tokens: count_tokens(&d.body, divisor),
                path: d.path,
                turn: None,
            })
            .collect()
    };
    if let Some(prompt) = latest_prompt(&rows).map(|r| r.path.clone()) {
        m.summarize(&prompt).await?;
    }
    tracing::debug!(
        run = %m.run.alias,
        turn = m.turn,
        predicted,
        ceiling = budget.ceiling,
        demoted = demoted.len(),
        "turn demotion"
    );
    m.emit_413(
        overflow_body(budget.overflow, budget.ceiling, &demoted),
        &demoted,
    )
    .await?;
    Ok(true)
}
