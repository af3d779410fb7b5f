//! sed substitutions: `s/old/new/flags`, chained, any of the usual
//! delimiters, `\<delimiter>` escapes.

use super::{Applied, EditError};
use regex::{NoExpand, RegexBuilder};
use serde::Serialize;

/// One `s` command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SedCommand {
    pub search: String,
    pub replace: String,
    /// The leading `[gimsv]*` of the text after the last delimiter.
    pub flags: String,
}

/// Delimiters that route a `<set>` body to sed. Upstream routes only `/`
/// (spec 02 §4.1 marks that a defect); we take the delimiters sed users
/// reach for, but not `, : ; .` which ordinary prose puts after an "s"
/// ("s.t. …", "s: …") and would turn a plain write into an edit.
pub fn is_sed_delimiter(c: char) -> bool {
    matches!(c, '/' | '|' | '#' | '!' | '@' | '%' | '~' | '+')
}

/// Parses a chain of `s` commands. The delimiter is the character after
/// the first `s`; each later command starts at the next `s<delim>` after
/// the previous one's flags, whatever separates them. None when the text
/// is not sed (fewer than two delimiters in the first command).
pub fn parse_sed(input: &str) -> Option<Vec<SedCommand>> {
    let mut chars = input.chars();
    if chars.next() != Some('s') {
        return None;
    }
    let delim = chars
        .next()
        .filter(|c| !(c.is_ascii_alphanumeric() || *c == '_' || c.is_whitespace()))?;
    let prefix: String = ['s', delim].iter().collect();
    let escaped: String = ['\\', delim].iter().collect();
    let unescape = |s: &str| s.replace(&escaped, &delim.to_string());
    let mut commands = Vec::new();
    let mut remaining = input.to_string();
    while let Some(rest) = remaining.strip_prefix(&prefix) {
        let parts = split_unescaped(rest, delim);
        if parts.len() < 2 {
            break;
        }
        let tail = parts.get(2).map(String::as_str).unwrap_or_default();
        let flags: String = tail
            .chars()
            .take_while(|c| matches!(c, 'g' | 'i' | 'm' | 's' | 'v'))
            .collect();
        commands.push(SedCommand {
            search: unescape(&parts[0]),
            replace: unescape(&parts[1]),
            flags,
        });
        let rest = parts[2..].join(&delim.to_string());
        remaining = match rest.find(&prefix) {
            Some(i) => rest[i..].to_string(),
            None => String::new(),
        };
    }
    (!commands.is_empty()).then_some(commands)
}

/// Splits on `delim`, keeping `\x` pairs (escaped delimiters included) intact.
fn split_unescaped(s: &str, delim: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            if let Some(next) = chars.next() {
                current.push(next);
            }
        } else if c == delim {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

/// Applies one command: as a regex (always global, `i`/`m`/`s` honoured),
/// with regex-escaped punctuation unescaped in the replacement, which is
/// then inserted literally. A pattern that does not compile, or that
/// changes nothing, falls back to the literal/tolerant matcher.
pub(crate) fn apply(body: &str, cmd: &SedCommand, limit: usize) -> Result<Applied, EditError> {
    let built = RegexBuilder::new(&cmd.search)
        .case_insensitive(cmd.flags.contains('i'))
        .multi_line(cmd.flags.contains('m'))
        .dot_matches_new_line(cmd.flags.contains('s'))
        // A model-written pattern must not be able to exhaust memory or,
        // through a huge compiled program, time.
        .size_limit(1 << 16)
        .dfa_size_limit(1 << 20)
        .build();
    if let Ok(regex) = built {
        let replacement = unescape_regex_punctuation(&cmd.replace);
        let (mut count, mut matched) = (0usize, 0usize);
        for m in regex.find_iter(body) {
            count += 1;
            matched += m.len();
            // Stop counting as soon as the result must pass the limit: an
            // empty match at every position of a large body is many matches.
            if count.saturating_mul(replacement.len()) > limit.saturating_add(matched) {
                return Err(EditError::TooLarge { limit });
            }
        }
        super::check_growth(body.len(), count, matched, &replacement, limit)?;
        let patched = regex.replace_all(body, NoExpand(&replacement));
        if patched != body {
            return Ok(Applied {
                body: patched.into_owned(),
                warnings: Vec::new(),
            });
        }
    }
    super::replace_within(body, &cmd.search, &cmd.replace, limit)
}

/// `\[x\]` → `[x]`: models escape regex punctuation in both halves; only
/// the search half is a regex.
pub(crate) fn unescape_regex_punctuation(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if "[](){}.*+?^$|\\".contains(next) {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}
