//! Cycle detection (spec 02 §6.3): a loop whose turns repeat one short
//! sequence of commands is told so with a 429 `Loop detected` error.
//!
//! Pure: the turn loop keeps one [`CycleDetector`] per loop, feeds it the
//! fingerprint of every turn that recorded at least one command and writes
//! the error when [`CycleDetector::push`] reports a cycle.

use crate::parse::Command;
use serde_json::Value;
use std::collections::VecDeque;

/// The error text upstream writes (and the verdict's reason when the
/// strikes that follow abandon the run).
pub const LOOP_DETECTED: &str = "Loop detected";

/// The status of the cycle error.
pub const LOOP_STATUS: i64 = 429;

/// One command as the detector compares it: `{tool}:` and its non-null
/// fields (the parser's command object, spec 02 §5.2, without `name`) as
/// sorted `k=v` pairs joined by `,`.
///
/// A recording refused for its path (too long, control characters) has no
/// fields, as upstream records it. Strings go in as written; other values
/// as JSON text, so two edits with different blocks differ (upstream prints
/// every object as `[object Object]` and would call distinct edits of one
/// file a loop).
pub fn command_fingerprint(cmd: &Command, invalid: bool) -> String {
    if invalid {
        return format!("{}:", cmd.name);
    }
    let mut parts: Vec<String> = match cmd.to_json() {
        Value::Object(map) => map
            .into_iter()
            .filter(|(k, v)| k != "name" && !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    parts.sort();
    format!("{}:{}", cmd.name, parts.join(","))
}

/// A turn's fingerprint: its command fingerprints sorted and joined by `|`
/// (order within the turn does not matter). None for a turn with no
/// recorded command, which upstream leaves out of the history.
pub fn turn_fingerprint(commands: &[String]) -> Option<String> {
    if commands.is_empty() {
        return None;
    }
    let mut sorted = commands.to_vec();
    sorted.sort();
    Some(sorted.join("|"))
}

/// The fingerprint history of one loop.
#[derive(Debug, Clone)]
pub struct CycleDetector {
    min_cycles: usize,
    max_period: usize,
    /// Only the last `min_cycles * max_period` turns can matter.
    history: VecDeque<String>,
}

/// A repeated sequence found at the end of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    pub period: usize,
    pub cycles: usize,
}

impl CycleDetector {
    /// Detection is off when either limit is 0 (upstream's unset limits
    /// behave erratically; a zero here is read as "never").
    pub fn new(min_cycles: u32, max_period: u32) -> Self {
        CycleDetector {
            min_cycles: min_cycles as usize,
            max_period: max_period as usize,
            history: VecDeque::new(),
        }
    }

    fn window(&self) -> usize {
        self.min_cycles.saturating_mul(self.max_period)
    }

    /// Adds a turn's fingerprint; reports the shortest period k ≤ the
    /// maximum whose last `k * min_cycles` fingerprints are one k-sequence
    /// repeated. Keeps reporting while the pattern continues.
    pub fn push(&mut self, fingerprint: String) -> Option<Cycle> {
        let window = self.window();
        if window == 0 {
            return None;
        }
        self.history.push_back(fingerprint);
        while self.history.len() > window {
            self.history.pop_front();
        }
        (1..=self.max_period)
            .find(|&k| self.repeats(k))
            .map(|period| Cycle {
                period,
                cycles: self.min_cycles,
            })
    }

    fn repeats(&self, k: usize) -> bool {
        let needed = k * self.min_cycles;
        let len = self.history.len();
        if len < needed {
            return false;
        }
        let tail: Vec<&String> = self.history.range(len - needed..).collect();
        tail.iter().enumerate().all(|(i, fp)| *fp == tail[i % k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn commands(content: &str) -> Vec<Command> {
        parse(content, 99).commands
    }

    fn fp(content: &str) -> String {
        let prints: Vec<String> = commands(content)
            .iter()
            .map(|c| command_fingerprint(c, false))
            .collect();
        turn_fingerprint(&prints).expect("a command")
    }

    #[test]
    fn a_command_is_its_tool_and_sorted_fields() {
        let cmd = &commands(r#"<get path="known://a" preview/>"#)[0];
        assert_eq!(
            command_fingerprint(cmd, false),
            "get:path=known://a,preview="
        );
        let cmd = &commands(r#"<update status="102">going</update>"#)[0];
        assert_eq!(
            command_fingerprint(cmd, false),
            "update:body=going,status=102"
        );
        assert_eq!(command_fingerprint(cmd, true), "update:");
    }

    #[test]
    fn order_within_a_turn_does_not_matter_but_fields_do() {
        assert_eq!(
            fp(r#"<get path="a"/><think>x</think>"#),
            fp(r#"<think>x</think><get path="a"/>"#)
        );
        assert_ne!(fp(r#"<get path="a"/>"#), fp(r#"<get path="b"/>"#));
        assert_ne!(fp("<think>x</think>"), fp("<think>y</think>"));
        assert_eq!(turn_fingerprint(&[]), None);
    }

    #[test]
    fn distinct_edits_of_one_entry_differ() {
        let edit = |r: &str| {
            fp(&format!(
                "<set path=\"known://a\">\n<<<<<<< SEARCH\nx\n=======\n{r}\n>>>>>>> REPLACE\n</set>"
            ))
        };
        assert_ne!(edit("y"), edit("z"));
    }

    #[test]
    fn one_repeated_turn_is_a_loop_at_the_min_cycles_th_time() {
        let mut d = CycleDetector::new(3, 4);
        assert_eq!(d.push("a".into()), None);
        assert_eq!(d.push("a".into()), None);
        assert_eq!(
            d.push("a".into()),
            Some(Cycle {
                period: 1,
                cycles: 3
            })
        );
        // Still a loop while it goes on.
        assert!(d.push("a".into()).is_some());
        // Broken by a different turn.
        assert_eq!(d.push("b".into()), None);
    }

    #[test]
    fn longer_periods_up_to_the_maximum() {
        let mut d = CycleDetector::new(3, 4);
        let seq = ["a", "b", "a", "b", "a"];
        for s in seq {
            assert_eq!(d.push(s.into()), None);
        }
        assert_eq!(
            d.push("b".into()),
            Some(Cycle {
                period: 2,
                cycles: 3
            })
        );

        let mut d = CycleDetector::new(2, 2);
        for s in ["a", "b", "c", "a", "b"] {
            assert_eq!(d.push(s.into()), None);
        }
        // Period 3 exceeds the maximum of 2.
        assert_eq!(d.push("c".into()), None);
    }

    #[test]
    fn varied_turns_are_no_loop() {
        let mut d = CycleDetector::new(3, 4);
        for s in ["a", "b", "c", "d", "a", "c", "b", "d", "a", "b", "a", "c"] {
            assert_eq!(d.push(s.into()), None, "{s}");
        }
    }

    #[test]
    fn zero_limits_disable_detection() {
        let mut d = CycleDetector::new(0, 4);
        assert_eq!(d.push("a".into()), None);
        let mut d = CycleDetector::new(3, 0);
        for _ in 0..5 {
            assert_eq!(d.push("a".into()), None);
        }
    }

    #[test]
    fn history_stays_bounded() {
        let mut d = CycleDetector::new(3, 4);
        for i in 0..1000 {
            d.push(i.to_string());
        }
        assert_eq!(d.history.len(), 12);
    }
}
