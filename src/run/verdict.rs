//! Whether a loop goes on after a turn (spec 02 §6.4).

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

/// Decides from this turn's strike and terminal update, keeping the
/// consecutive-strike streak.
pub fn decide(
    strike: bool,
    terminal_status: Option<RunStatus>,
    streak: &mut u32,
    max_strikes: u32,
) -> Verdict {
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
                reason: Some(format!("Abandoned after {} consecutive strikes.", *streak)),
            },
        };
    }
    Verdict::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_terminal_turn_ends() {
        let mut streak = 2;
        assert_eq!(
            decide(false, Some(RunStatus::Completed), &mut streak, 3),
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
            decide(true, Some(RunStatus::Completed), &mut streak, 3),
            Verdict::Continue
        );
        assert_eq!(streak, 1);
    }

    #[test]
    fn strikes_abandon_the_run() {
        let mut streak = 0;
        assert_eq!(decide(true, None, &mut streak, 3), Verdict::Continue);
        assert_eq!(decide(true, None, &mut streak, 3), Verdict::Continue);
        assert_eq!(
            decide(true, None, &mut streak, 3),
            Verdict::End {
                status: RunStatus::Aborted,
                reason: Some("Abandoned after 3 consecutive strikes.".into())
            }
        );
    }

    #[test]
    fn clean_turns_reset_the_streak() {
        let mut streak = 2;
        assert_eq!(decide(false, None, &mut streak, 3), Verdict::Continue);
        assert_eq!(streak, 0);
    }
}
