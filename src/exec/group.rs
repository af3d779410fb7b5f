//! Process-group signalling: every command runs as the leader of its own
//! group (pgid = the bash pid), so one `killpg` reaches every process it
//! started, pipelines and background jobs included.

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends `signal` to the whole group. A group that is already gone is not
/// an error; anything else is logged, since there is nothing better to do.
pub(crate) fn signal_group(pgid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, ?signal, error = %e, "could not signal process group"),
    }
}

/// Whether any live (non-zombie) process is left in the group.
///
/// `kill(-pgid, 0)` alone is not enough: members whose parent died are
/// re-parented to PID 1, and an init that never reaps (as in some
/// containers) leaves them as zombies that still count for `kill`. Zombies
/// hold no pipes and run nothing, so they are ignored by a `/proc` scan.
/// Without a readable `/proc` the `kill` answer stands.
pub(crate) async fn group_alive(pgid: i32) -> bool {
    // Any other answer means the group exists (EPERM: a member we may not
    // signal, e.g. setuid, is still there).
    if let Err(Errno::ESRCH) = killpg(Pid::from_raw(pgid), None) {
        return false;
    }
    // Reading /proc is quick but still file I/O: keep it off the async thread.
    tokio::task::spawn_blocking(move || live_member_in_proc(pgid).unwrap_or(true))
        .await
        .unwrap_or(true)
}

/// `Some(true)` when `/proc` lists a process of the group that is not a
/// zombie; `None` when `/proc` cannot be read.
fn live_member_in_proc(pgid: i32) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // The process may end between listing and reading: skip it then.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, group)) = parse_stat(&stat) {
            if group == pgid && state != 'Z' && state != 'X' {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// State letter and process group from `/proc/PID/stat`:
/// `pid (comm) state ppid pgrp ...`. The command name may itself contain
/// spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Kills the group with SIGKILL when dropped while armed: the last line of
/// defence if the supervising task is dropped (runtime shutdown, abort)
/// before it could end the group properly. Disarmed once the group is
/// known to be gone, so a later, unrelated group can never be hit.
pub(crate) struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl GroupGuard {
    pub(crate) fn new(pgid: i32) -> Self {
        GroupGuard { pgid, armed: true }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::warn!(
                pgid = self.pgid,
                "command supervisor dropped; killing its process group"
            );
            signal_group(self.pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        assert_eq!(
            parse_stat("42 (sleep) S 1 40 40 0 -1 4194304"),
            Some(('S', 40))
        );
        assert_eq!(parse_stat("43 (a) b) (c) Z 1 41 41 0"), Some(('Z', 41)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) R"), None);
    }

    #[tokio::test]
    async fn a_group_that_never_existed_is_not_alive() {
        // pid_max is at most 2^22 on Linux, so this pgid cannot exist.
        assert!(!group_alive(i32::MAX - 1).await);
    }
}
