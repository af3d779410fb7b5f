//! Whether a loop goes on after a turn (spec 02 §6.4).

use super::cycles::LOOP_DETECTED;
use crate::store::RunStatus;

/// What happens after a turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Continue,
    End {
        status: RunStatus,
        reason: Option<String>,
    },
}

/// What a turn left for the verdict.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnResult {
    /// The turn wrote at least one error entry.
    pub strike: bool,
    /// The last update's terminal status, when it had a text.
    pub terminal_status: Option<RunStatus>,
    /// Cycle detection fired this turn (its 429 error is among the strike's).
    pub loop_detected: bool,
}

/// Decides from this turn's result, keeping the consecutive-strike streak.
/// A run abandoned on a turn that detected a loop gives that as its reason.
pub fn decide(turn: TurnResult, streak: &mut u32, max_strikes: u32) -> Verdict {
    let TurnResult {
        strike,
        terminal_status,
        loop_detected,
    } = turn;
    if !strike {
        *streak = 0;
        return match terminal_status {
            Some(status) => Verdict::End {
                status,
                reason: None,
            },
            None => Verdict::Continue,
        };
    }
    *streak += 1;
    if max_strikes > 0 && *streak >= max_strikes {
        return match terminal_status {
            Some(status) => Verdict::End {
                status,
                reason: None,
            },
            None => Verdict::End {
                status: RunStatus::Aborted,
                reason: Some(if loop_detected {
                    LOOP_DETECTED.to_string()
                } else {
                    format!("Abandoned after {} consecutive strikes.", *streak)
                }),
            },
        };
    }
    Verdict::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(strike: bool, terminal_status: Option<RunStatus>) -> TurnResult {
        TurnResult {
            strike,
            terminal_status,
            loop_detected: false,
        }
    }

    #[test]
    fn clean_terminal_turn_ends() {
        let mut streak = 2;
        assert_eq!(
            decide(turn(false, Some(RunStatus::Completed)), &mut streak, 3),
            Verdict::End {
                status: RunStatus::Completed,
                reason: None
            }
        );
        assert_eq!(streak, 0);
    }

    #[test]
    fn a_strike_turns_a_terminal_update_into_a_continuation() {
        let mut streak = 0;
        assert_eq!(
            decide(turn(true, Some(RunStatus::Completed)), &mut streak, 3),
            Verdict::Continue
        );
        assert_eq!(streak, 1);
    }

    #[test]
    fn strikes_abandon_the_run() {
        let mut streak = 0;
        assert_eq!(decide(turn(true, None), &mut streak, 3), Verdict::Continue);
        assert_eq!(decide(turn(true, None), &mut streak, 3), Verdict::Continue);
        assert_eq!(
            decide(turn(true, None), &mut streak, 3),
            Verdict::End {
                status: RunStatus::Aborted,
                reason: Some("Abandoned after 3 consecutive strikes.".into())
            }
        );
    }

    #[test]
    fn a_loop_abandons_with_its_own_reason() {
        let looping = TurnResult {
            strike: true,
            terminal_status: None,
            loop_detected: true,
        };
        let mut streak = 2;
        assert_eq!(
            decide(looping, &mut streak, 3),
            Verdict::End {
                status: RunStatus::Aborted,
                reason: Some("Loop detected".into())
            }
        );
        // A loop below the strike limit only continues.
        let mut streak = 0;
        assert_eq!(decide(looping, &mut streak, 3), Verdict::Continue);
        // A terminal update on the abandoning strike still completes.
        let mut streak = 2;
        let finishing = TurnResult {
            terminal_status: Some(RunStatus::Completed),
            ..looping
        };
        assert_eq!(
            decide(finishing, &mut streak, 3),
            Verdict::End {
                status: RunStatus::Completed,
                reason: None
            }
        );
    }

    #[test]
    fn clean_turns_reset_the_streak() {
        let mut streak = 2;
        assert_eq!(decide(turn(false, None), &mut streak, 3), Verdict::Continue);
        assert_eq!(streak, 0);
    }
}
