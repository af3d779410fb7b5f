//! The environment a server-run command gets: the server's own, minus
//! anything that looks like a secret or like rummy's configuration.

use std::ffi::{OsStr, OsString};

/// True when a variable of this name must not reach a command: names ending
/// in `_API_KEY` or `_TOKEN`, or beginning with `RUMMY_`. Compared without
/// regard to case, because a lower-case `openai_api_key` is just as secret
/// and dropping too much is the safe side.
pub fn is_scrubbed(name: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    upper.ends_with("_API_KEY") || upper.ends_with("_TOKEN") || upper.starts_with("RUMMY_")
}

/// The given environment without the scrubbed names, order kept.
pub fn scrub_env<I, K, V>(parent: I) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    parent
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .filter(|(k, _)| !is_scrubbed(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_rummy_settings_are_dropped() {
        let kept = scrub_env([
            ("FOO_API_KEY", "1"),
            ("openai_api_key", "2"),
            ("BAR_TOKEN", "3"),
            ("RUMMY_AUTH_TOKEN", "4"),
            ("RUMMY_X", "5"),
            ("KEEP_ME", "6"),
            ("PATH", "/bin"),
            // Only the ends and the start count.
            ("TOKENS_USED", "7"),
            ("MY_API_KEYS", "8"),
            ("XRUMMY_Y", "9"),
        ]);
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_string_lossy()).collect();
        assert_eq!(
            names,
            ["KEEP_ME", "PATH", "TOKENS_USED", "MY_API_KEYS", "XRUMMY_Y"]
        );
    }
}
