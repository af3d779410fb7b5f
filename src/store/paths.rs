//! Path rules shared by every writer: scheme extraction, normalization and
//! the `log://turn_N/{action}/{target}` shape (spec 01 §2).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters JavaScript's `encodeURIComponent` leaves alone; matching it
/// keeps our paths byte-identical to upstream's.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `encodeURIComponent` equivalent.
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

/// The scheme of a path: the text before the first `://` when it is not at
/// the start; bare paths (project files) have none.
pub fn scheme_of(path: &str) -> Option<&str> {
    match path.find("://") {
        Some(i) if i > 0 => Some(&path[..i]),
        _ => None,
    }
}

/// Normalizes a single entry path: scheme lower-cased, each segment of the
/// rest decoded then re-encoded, so `KNOWN://a%2Fb c` == `known://a/b%20c`.
/// Bare paths are returned unchanged.
pub fn normalize_path(path: &str) -> String {
    let Some(scheme) = scheme_of(path) else {
        return path.to_string();
    };
    let rest = &path[scheme.len() + 3..];
    let decoded = match percent_decode_str(rest).decode_utf8() {
        Ok(d) => d.into_owned(),
        Err(_) => rest.to_string(),
    };
    let encoded: Vec<String> = decoded.split('/').map(encode_component).collect();
    format!("{}://{}", scheme.to_ascii_lowercase(), encoded.join("/"))
}

/// The longest raw target kept in a log path. Upstream leaves it uncapped,
/// so long update bodies or error messages overflow the 2048-char path
/// limit and crash the loop (a defect in 2.0.0).
pub const LOG_TARGET_MAX_CHARS: usize = 150;

/// The raw (un-suffixed, normalized) log path of one action.
pub fn log_path(turn: i64, action: &str, target: &str) -> String {
    let capped: String = target.chars().take(LOG_TARGET_MAX_CHARS).collect();
    normalize_path(&format!(
        "log://turn_{turn}/{action}/{}",
        encode_component(&capped)
    ))
}

/// A target the model wrote that looks like leaked reasoning rather than a
/// path: too long, or holding control characters.
pub fn is_invalid_target(target: &str) -> bool {
    target.chars().count() > 512 || target.chars().any(char::is_control)
}

/// The action segment of `log://turn_N/{action}/...`.
pub fn log_action(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("log://turn_")?;
    let (_turn, rest) = rest.split_once('/')?;
    let (action, _) = rest.split_once('/')?;
    Some(action)
}

/// A path slug from free text (spec 01 §2): the first 80 UTF-16 units,
/// commas become segment breaks, spaces underscores, empty segments
/// dropped, each segment URI-encoded.
pub fn slugify(text: &str) -> String {
    let units: Vec<u16> = text.encode_utf16().take(80).collect();
    let head = String::from_utf16_lossy(&units);
    head.replace(',', "/")
        .replace(' ', "_")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(encode_component)
        .collect::<Vec<_>>()
        .join("/")
}

/// The data-channel base of a log path: `log://turn_N/{action}/{rest}`
/// -> `{action}://turn_N/{rest}`; channels are `{base}_{channel}`.
pub fn data_base(log: &str) -> Option<String> {
    let rest = log.strip_prefix("log://turn_")?;
    let (turn, rest) = rest.split_once('/')?;
    if turn.is_empty() || !turn.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (action, rest) = rest.split_once('/')?;
    if action.is_empty() || rest.is_empty() {
        return None;
    }
    Some(format!("{action}://turn_{turn}/{rest}"))
}

/// The path of one output channel (1 stdout, 2 stderr) of a command.
pub fn channel_path(log: &str, channel: u32) -> Option<String> {
    data_base(log).map(|base| format!("{base}_{channel}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_extraction() {
        assert_eq!(scheme_of("known://a"), Some("known"));
        assert_eq!(scheme_of("src/app.js"), None);
        assert_eq!(scheme_of("://x"), None);
        assert_eq!(scheme_of(""), None);
    }

    #[test]
    fn normalization_matches_upstream() {
        assert_eq!(normalize_path("KNOWN://a%2Fb c"), "known://a/b%20c");
        assert_eq!(normalize_path("known://100%"), "known://100%25");
        assert_eq!(normalize_path("known://it's(ok)!~*"), "known://it's(ok)!~*");
        assert_eq!(normalize_path("./src/a b.js"), "./src/a b.js");
    }

    #[test]
    fn log_paths_encode_the_target() {
        assert_eq!(
            log_path(1, "set", "known://answer"),
            "log://turn_1/set/known%3A//answer"
        );
        assert_eq!(
            log_path(1, "update", "The answer is 4"),
            "log://turn_1/update/The%20answer%20is%204"
        );
        assert_eq!(
            log_path(2, "get", "src/app.js"),
            "log://turn_2/get/src/app.js"
        );
        let long = "x".repeat(5000);
        assert!(log_path(3, "error", &long).len() < 200);
        assert_eq!(log_action("log://turn_12/update/x"), Some("update"));
        assert_eq!(log_action("known://x"), None);
    }

    #[test]
    fn slugs_match_upstream() {
        assert_eq!(slugify(""), "");
        assert_eq!(slugify("history,mongol,khan"), "history/mongol/khan");
        assert_eq!(slugify("known://auth_flow"), "known%3A/auth_flow");
        assert_eq!(slugify("the auth flow"), "the_auth_flow");
        assert_eq!(slugify(&"a".repeat(100)).len(), 80);
        assert_eq!(slugify(",,a,,b"), "a/b");
    }

    #[test]
    fn data_channel_paths() {
        assert_eq!(
            data_base("log://turn_1/sh/ls%20-la").as_deref(),
            Some("sh://turn_1/ls%20-la")
        );
        assert_eq!(
            channel_path("log://turn_12/env/git/log", 2).as_deref(),
            Some("env://turn_12/git/log_2")
        );
        assert_eq!(data_base("log://turn_x/sh/a"), None);
        assert_eq!(data_base("log://turn_1/sh"), None);
        assert_eq!(data_base("known://a"), None);
    }

    #[test]
    fn invalid_targets() {
        assert!(is_invalid_target(&"a".repeat(513)));
        assert!(is_invalid_target("a\nb"));
        assert!(!is_invalid_target("known://fine"));
    }
}
