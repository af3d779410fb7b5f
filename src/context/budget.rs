//! Budget arithmetic (spec 01 §8): the ceiling check, the next-packet
//! prediction, and the texts of the 413 entries the model reads. Pure
//! functions; the turn (`run::budget_turn`) applies them to the store.

use crate::store::TurnContextRow;
use crate::tokens::{ceiling, count_tokens};

/// What `computeBudget` returns: one packet size against one ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub ceiling: i64,
    pub total_tokens: i64,
    /// Equal to `total_tokens`, under the name the packet shows.
    pub token_usage: i64,
    pub tokens_free: i64,
    pub overflow: i64,
    pub ok: bool,
}

/// `computeBudget({contextSize, totalTokens})`. The ceiling never exceeds
/// the window itself, so a packet within it is within the window.
pub fn compute_budget(context_size: i64, ratio: f64, total_tokens: i64) -> Budget {
    let cap = ceiling(context_size, ratio).min(context_size);
    let overflow = (total_tokens - cap).max(0);
    Budget {
        ceiling: cap,
        total_tokens,
        token_usage: total_tokens,
        tokens_free: (cap - total_tokens).max(0),
        overflow,
        ok: overflow == 0,
    }
}

/// `measureMessages`: the tokens of each message's content, summed.
pub fn measure_messages<'a>(contents: impl IntoIterator<Item = &'a str>, divisor: f64) -> i64 {
    contents.into_iter().map(|c| count_tokens(c, divisor)).sum()
}

/// The figure a packet is checked by: what we measured, or the provider's
/// count of the previous packet when that is larger. The provider's figure
/// alone (upstream) is in its units and can hide a packet twice the ceiling.
pub fn check_total(measured: i64, previous_actual: Option<i64>) -> i64 {
    measured.max(previous_actual.unwrap_or(0))
}

/// Post-dispatch prediction of the next packet: this turn's size plus the
/// projected bodies of every row this turn wrote or promoted.
pub fn predict_next_packet(rows: &[TurnContextRow], turn: i64, baseline: i64, divisor: f64) -> i64 {
    let delta: i64 = rows
        .iter()
        .filter(|r| r.source_turn == turn && r.category != SYSTEM_CATEGORY)
        .map(|r| count_tokens(&r.body, divisor))
        .sum();
    baseline + delta
}

/// The category of the `turn_context` row that records the system prompt
/// (for the `system` bucket of `run/state`); never a model row.
pub const SYSTEM_CATEGORY: &str = "system";

/// The prompt both demotions summarize: the last `prompt://` row in
/// ordinal order. Upstream's Turn Demotion took the first one, which is an
/// already-summarized prompt once any exists.
pub fn latest_prompt(rows: &[TurnContextRow]) -> Option<&TurnContextRow> {
    rows.iter()
        .filter(|r| r.category == "prompt" && r.path.starts_with("prompt://"))
        .max_by_key(|r| r.ordinal)
}

/// One entry a demotion summarized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demoted {
    pub path: String,
    pub tokens: i64,
    /// The view turn; Turn Demotion's own-turn targets carry none.
    pub turn: Option<i64>,
}

/// The pre-LLM 413: the packet does not fit (and there was no prompt to
/// give up, or giving it up was not enough).
pub fn pre_llm_message(budget: &Budget, after_prompt: bool) -> String {
    let packet = budget.ceiling + budget.overflow;
    if after_prompt {
        format!(
            "Token Budget overflow: packet was {packet} tokens after demoting the prompt, ceiling is {}.",
            budget.ceiling
        )
    } else {
        format!(
            "Token Budget overflow: packet was {packet} tokens, ceiling is {}.",
            budget.ceiling
        )
    }
}

/// The Turn Demotion 413 body (spec 01 §8.7), naming every demoted path so
/// the model does not promote it again at once.
pub fn overflow_body(overflow: i64, ceiling: i64, demoted: &[Demoted]) -> String {
    let count = demoted.len();
    let total: i64 = demoted.iter().map(|d| d.tokens).sum();
    let plural = if count == 1 { "" } else { "s" };
    let mut body = format!(
        "Token Budget overflow: packet was {} tokens, ceiling is {ceiling}. {count} promotion{plural} ({total} tokens) demoted to fit.",
        ceiling + overflow
    );
    if count > 0 {
        body.push_str("\nDemoted:");
        for d in demoted {
            match d.turn.filter(|t| *t != 0) {
                Some(t) => {
                    body.push_str(&format!("\n- {} (turn {t}, {} tokens)", d.path, d.tokens))
                }
                None => body.push_str(&format!("\n- {} ({} tokens)", d.path, d.tokens)),
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntryState;

    fn row(
        path: &str,
        category: &str,
        ordinal: i64,
        source_turn: i64,
        body: &str,
    ) -> TurnContextRow {
        TurnContextRow::new(
            ordinal,
            crate::store::SnapshotRow {
                sort_key: format!("{ordinal:012}"),
                path: path.into(),
                state: EntryState::Resolved,
                outcome: None,
                visibility: "visible".into(),
                body: body.into(),
                attributes: "{}".into(),
                category: category.into(),
                source_turn,
            },
        )
    }

    #[test]
    fn compute_budget_matches_upstream() {
        let b = compute_budget(32768, 0.9, 30000);
        assert_eq!(b.ceiling, 29491);
        assert_eq!(b.overflow, 509);
        assert_eq!(b.tokens_free, 0);
        assert!(!b.ok);
        let b = compute_budget(12000, 0.9, 10800);
        assert_eq!(
            (b.ceiling, b.overflow, b.tokens_free, b.ok),
            (10800, 0, 0, true)
        );
        assert_eq!(b.token_usage, 10800);
        let b = compute_budget(12000, 0.9, 800);
        assert_eq!(b.tokens_free, 10000);
    }

    #[test]
    fn the_check_takes_the_larger_measure() {
        assert_eq!(check_total(5000, None), 5000);
        assert_eq!(check_total(5000, Some(100)), 5000);
        assert_eq!(check_total(5000, Some(7000)), 7000);
        assert_eq!(measure_messages(["abcd", "abc", ""], 2.0), 4);
    }

    #[test]
    fn prediction_adds_this_turns_rows() {
        let rows = vec![
            row("known://old", "data", 1, 2, "xxxxxxxx"),
            row("known://new", "data", 2, 3, "xxxx"),
            row("log://turn_3/set/a", "logging", 3, 3, "xx"),
            row(
                "instructions://system",
                SYSTEM_CATEGORY,
                0,
                3,
                "xxxxxxxxxxxx",
            ),
        ];
        assert_eq!(predict_next_packet(&rows, 3, 100, 2.0), 103);
        assert_eq!(predict_next_packet(&rows, 2, 100, 2.0), 104);
    }

    #[test]
    fn the_latest_prompt_is_the_last_in_ordinal_order() {
        let old = row("prompt://1", "prompt", 5, 1, "a");
        let old = TurnContextRow::new(
            old.ordinal,
            crate::store::SnapshotRow {
                visibility: "summarized".into(),
                ..(*old).clone()
            },
        );
        let rows = vec![old, row("prompt://4", "prompt", 6, 4, "b")];
        assert_eq!(
            latest_prompt(&rows).map(|r| r.path.as_str()),
            Some("prompt://4")
        );
        assert!(latest_prompt(&rows[..0]).is_none());
    }

    #[test]
    fn pre_llm_bodies() {
        let b = compute_budget(12000, 0.9, 11000);
        assert_eq!(
            pre_llm_message(&b, false),
            "Token Budget overflow: packet was 11000 tokens, ceiling is 10800."
        );
        assert_eq!(
            pre_llm_message(&b, true),
            "Token Budget overflow: packet was 11000 tokens after demoting the prompt, ceiling is 10800."
        );
    }

    #[test]
    fn overflow_bodies() {
        assert_eq!(
            overflow_body(200, 10800, &[]),
            "Token Budget overflow: packet was 11000 tokens, ceiling is 10800. 0 promotions (0 tokens) demoted to fit."
        );
        let one = [Demoted {
            path: "docs/guide.md".into(),
            tokens: 3000,
            turn: None,
        }];
        assert_eq!(
            overflow_body(1, 100, &one),
            "Token Budget overflow: packet was 101 tokens, ceiling is 100. 1 promotion (3000 tokens) demoted to fit.\nDemoted:\n- docs/guide.md (3000 tokens)"
        );
        let two = [
            Demoted {
                path: "known://a".into(),
                tokens: 10,
                turn: Some(2),
            },
            Demoted {
                path: "src/b.rs".into(),
                tokens: 5,
                turn: Some(0),
            },
        ];
        assert_eq!(
            overflow_body(50, 1000, &two),
            "Token Budget overflow: packet was 1050 tokens, ceiling is 1000. 2 promotions (15 tokens) demoted to fit.\nDemoted:\n- known://a (turn 2, 10 tokens)\n- src/b.rs (5 tokens)"
        );
    }
}
