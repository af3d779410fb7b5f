//! `<env>command</env>`: a shell command that only inspects. It works
//! exactly like `<sh>` (see `sh.rs`) under its own scheme and doc; the one
//! difference is policy: ask mode allows it.

use super::sh::Shell;

/// `<env>`: commands without side effects.
pub const ENV: Shell = Shell::new("env", include_str!("../../config/prompts/tool_env.md"));
