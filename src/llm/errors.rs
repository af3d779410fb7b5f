//! Error classes of provider calls: what failed, and whether waiting can
//! help. Providers build these from the HTTP status, the body and the
//! headers; the retry loop (`retry.rs`) only looks at [`ErrorClass`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest provider body kept in an error message (error entries are
/// shown to clients and to the model; an HTML error page is not useful
/// past its first screen).
const MAX_BODY_CHARS: usize = 2000;

/// What kind of failure a provider call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The packet did not fit the model's window: a 413 strike, never retried.
    ContextExceeded,
    /// 429.
    RateLimited,
    /// 503: the model is loading (warming up) or the service is unavailable.
    Unavailable,
    /// 502 and 504: a proxy in front of the model failed.
    Gateway,
    /// Any other 5xx.
    Server,
    /// Connection refused, reset, DNS ...
    Network,
    /// No answer within `RUMMY_FETCH_TIMEOUT`.
    Timeout,
    /// Other 4xx: bad parameters, bad key, unknown model. Retrying cannot help.
    Client,
    /// A 2xx reply we could not read.
    Malformed,
    /// The provider has no configuration.
    NotConfigured,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::ContextExceeded => "context_exceeded",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Gateway => "gateway",
            ErrorClass::Server => "server",
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Client => "client",
            ErrorClass::Malformed => "malformed",
            ErrorClass::NotConfigured => "not_configured",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed provider call. Every HTTP variant's message names the provider,
/// the status and the provider's own body, so clients see what it said.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{message}")]
    ContextExceeded { message: String },
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<RetryAfter>,
    },
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<RetryAfter>,
    },
    #[error("{message}")]
    Gateway { status: u16, message: String },
    #[error("{message}")]
    Server { status: u16, message: String },
    #[error("{provider} request failed: {message}")]
    Network {
        provider: &'static str,
        message: String,
    },
    #[error("{provider} did not answer within {} ms (RUMMY_FETCH_TIMEOUT)", .after.as_millis())]
    Timeout {
        provider: &'static str,
        after: Duration,
    },
    #[error("{message}")]
    Client { status: u16, message: String },
    #[error("{provider} returned a malformed reply: {message}")]
    Malformed {
        provider: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotConfigured(String),
    /// A retryable failure outlived its class's deadline, or asked for a
    /// wait the deadline cannot cover.
    #[error(
        "gave up after {attempts} failed attempt(s) over {} s ({} retry deadline: {reason}); last error: {last}",
        .elapsed.as_secs(), .last.class()
    )]
    RetriesExhausted {
        attempts: u32,
        elapsed: Duration,
        /// Why waiting stopped, in words for the error entry.
        reason: String,
        last: Box<LlmError>,
    },
}

impl LlmError {
    pub fn class(&self) -> ErrorClass {
        match self {
            LlmError::ContextExceeded { .. } => ErrorClass::ContextExceeded,
            LlmError::RateLimited { .. } => ErrorClass::RateLimited,
            LlmError::Unavailable { .. } => ErrorClass::Unavailable,
            LlmError::Gateway { .. } => ErrorClass::Gateway,
            LlmError::Server { .. } => ErrorClass::Server,
            LlmError::Network { .. } => ErrorClass::Network,
            LlmError::Timeout { .. } => ErrorClass::Timeout,
            LlmError::Client { .. } => ErrorClass::Client,
            LlmError::Malformed { .. } => ErrorClass::Malformed,
            LlmError::NotConfigured(_) => ErrorClass::NotConfigured,
            LlmError::RetriesExhausted { last, .. } => last.class(),
        }
    }

    /// The wait the service asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<&RetryAfter> {
        match self {
            LlmError::RateLimited { retry_after, .. }
            | LlmError::Unavailable { retry_after, .. } => retry_after.as_ref(),
            _ => None,
        }
    }

    /// A reqwest failure before or while reading the reply.
    pub fn transport(provider: &'static str, e: &reqwest::Error, timeout: Duration) -> LlmError {
        if e.is_timeout() {
            return LlmError::Timeout {
                provider,
                after: timeout,
            };
        }
        // reqwest's own text is "error sending request for url (...)"; the
        // cause ("Connection refused") is further down the source chain.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        LlmError::Network { provider, message }
    }

    /// A reply body that is not the JSON the provider promised.
    pub fn malformed(provider: &'static str, problem: impl std::fmt::Display, body: &str) -> Self {
        let start: String = body.chars().take(200).collect();
        LlmError::Malformed {
            provider,
            message: format!("{problem} (body starts: {start:?})"),
        }
    }
}

/// How one provider words its HTTP errors (upstream's message shapes).
#[derive(Debug, Clone, Copy)]
pub struct ErrorStyle {
    /// "OpenAI-compatible", "Ollama", "OpenRouter", "xAI".
    pub label: &'static str,
    /// The key to check on 401/403, for providers that name it.
    pub key_setting: Option<&'static str>,
}

/// One non-2xx reply.
pub struct HttpFailure<'a> {
    pub status: u16,
    pub body: &'a str,
    pub retry_after: Option<RetryAfter>,
}

impl ErrorStyle {
    /// Classifies a non-2xx reply by its status, then its text.
    pub fn classify(&self, failure: HttpFailure<'_>) -> LlmError {
        let HttpFailure {
            status,
            body,
            retry_after,
        } = failure;
        let shown = clip(body.trim());
        let message = match (status, self.key_setting) {
            (401 | 403, Some(key)) => format!(
                "{} Authentication Error: {status} - {shown}. Please check your {key}.",
                self.label
            ),
            _ => format!("{} API error: {status} - {shown}", self.label),
        };
        // A 429 saying "tokens per minute limit" is a rate limit, not a
        // window overflow (upstream's pattern runs first and strikes it).
        if status != 429 && (status == 413 || looks_like_context_exceeded(body)) {
            return LlmError::ContextExceeded { message };
        }
        match status {
            429 => LlmError::RateLimited {
                message,
                retry_after,
            },
            503 => LlmError::Unavailable {
                message,
                retry_after,
            },
            502 | 504 => LlmError::Gateway { status, message },
            500..=599 => LlmError::Server { status, message },
            _ => LlmError::Client { status, message },
        }
    }

    /// An error object inside a 2xx body (OpenRouter forwards upstream
    /// failures this way): classified by its numeric `code` when it has one.
    pub fn embedded(&self, body: &serde_json::Value) -> Option<LlmError> {
        let error = body.get("error").filter(|e| !e.is_null())?;
        let status = error
            .get("code")
            .and_then(serde_json::Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..=599).contains(c))
            .unwrap_or(502);
        Some(self.classify(HttpFailure {
            status,
            body: &body.to_string(),
            retry_after: None,
        }))
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Upstream's "the context was too long" test (spec 03 §6.3), applied to a
/// provider's error text, plus the "maximum prompt length" wording xAI uses.
pub fn looks_like_context_exceeded(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let after = |first: &str, seconds: &[&str]| {
        words
            .iter()
            .position(|w| w.starts_with(first))
            .is_some_and(|i| words[i..].iter().any(|w| seconds.contains(w)))
    };
    after("context", &["size", "length", "limit"])
        || after("token", &["limit", "exceed", "exceeded", "exceeds"])
        || after("too", &["long", "large"])
        || after("prompt", &["length"])
}

/// What a service said about when to call again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait this long (zero for a date already past).
    Wait(Duration),
    /// A number no wait can honour (negative, NaN, infinite, or beyond what
    /// a `Duration` holds); the raw header text is kept for the error.
    /// The retry loop treats it as a wait past every deadline: it stops.
    Unusable(String),
}

/// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, as a wait.
/// Text that is neither a number nor a date is ignored, as if absent.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<RetryAfter> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(raw) = text("retry-after-ms") {
        if let Ok(ms) = raw.parse::<f64>() {
            return Some(seconds_wait(ms / 1000.0, raw));
        }
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(seconds_wait(seconds, value));
    }
    let at = http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(RetryAfter::Wait(Duration::from_secs(
        at.saturating_sub(now),
    )))
}

/// A wait in seconds, checked: `Duration::from_secs_f64` panics on exactly
/// the values a misbehaving service may send.
fn seconds_wait(seconds: f64, raw: &str) -> RetryAfter {
    if seconds < 0.0 {
        return RetryAfter::Unusable(raw.to_string());
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(wait) => RetryAfter::Wait(wait),
        Err(_) => RetryAfter::Unusable(raw.to_string()),
    }
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// the only date form HTTP senders may generate.
pub fn http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    // The grammar's year is four digits; bounding it keeps the day
    // arithmetic below far from overflow whatever a sender writes.
    let year: i64 = year.parse().ok().filter(|y| (0..=9999).contains(y))?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI: ErrorStyle = ErrorStyle {
        label: "OpenAI-compatible",
        key_setting: None,
    };

    fn class_of(status: u16, body: &str) -> ErrorClass {
        OPENAI
            .classify(HttpFailure {
                status,
                body,
                retry_after: None,
            })
            .class()
    }

    #[test]
    fn context_exceeded_detection() {
        assert!(looks_like_context_exceeded(
            "This model's maximum context length is 8192 tokens"
        ));
        assert!(looks_like_context_exceeded("prompt too long"));
        assert!(looks_like_context_exceeded("token limit exceeded"));
        assert!(looks_like_context_exceeded(
            "This model's maximum prompt length is 131072 but the request contains 140000 tokens."
        ));
        assert!(looks_like_context_exceeded(
            r#"{"code":"context_length_exceeded"}"#
        ));
        assert!(!looks_like_context_exceeded("rate limited, try later"));
        assert!(!looks_like_context_exceeded("Loading model"));
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(
            class_of(413, "Payload Too Large"),
            ErrorClass::ContextExceeded
        );
        assert_eq!(
            class_of(400, "the request exceeds the available context size"),
            ErrorClass::ContextExceeded
        );
        assert_eq!(
            class_of(429, "Rate limit reached for tokens per minute limit"),
            ErrorClass::RateLimited
        );
        assert_eq!(class_of(503, "Loading model"), ErrorClass::Unavailable);
        assert_eq!(
            class_of(502, "<html>Bad Gateway</html>"),
            ErrorClass::Gateway
        );
        assert_eq!(class_of(504, ""), ErrorClass::Gateway);
        assert_eq!(class_of(500, "boom"), ErrorClass::Server);
        assert_eq!(class_of(401, "bad key"), ErrorClass::Client);
        assert_eq!(class_of(404, "no such model"), ErrorClass::Client);
    }

    #[test]
    fn messages_keep_the_provider_text() {
        let e = OPENAI.classify(HttpFailure {
            status: 400,
            body: " bad temperature ",
            retry_after: None,
        });
        assert_eq!(
            e.to_string(),
            "OpenAI-compatible API error: 400 - bad temperature"
        );
        let keyed = ErrorStyle {
            label: "xAI",
            key_setting: Some("XAI_API_KEY"),
        };
        let e = keyed.classify(HttpFailure {
            status: 401,
            body: "no",
            retry_after: None,
        });
        assert_eq!(
            e.to_string(),
            "xAI Authentication Error: 401 - no. Please check your XAI_API_KEY."
        );
        let long = "x".repeat(5000);
        let e = class_msg(&long);
        assert!(e.chars().count() < 2100, "{}", e.len());
    }

    fn class_msg(body: &str) -> String {
        OPENAI
            .classify(HttpFailure {
                status: 500,
                body,
                retry_after: None,
            })
            .to_string()
    }

    #[test]
    fn embedded_errors_use_their_code() {
        let body = serde_json::json!({"error": {"code": 429, "message": "slow down"}});
        assert_eq!(
            OPENAI.embedded(&body).map(|e| e.class()),
            Some(ErrorClass::RateLimited)
        );
        let body = serde_json::json!({"error": {"message": "upstream died"}});
        assert_eq!(
            OPENAI.embedded(&body).map(|e| e.class()),
            Some(ErrorClass::Gateway)
        );
        assert!(OPENAI
            .embedded(&serde_json::json!({"choices": []}))
            .is_none());
    }

    fn wait(d: Duration) -> Option<RetryAfter> {
        Some(RetryAfter::Wait(d))
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), wait(Duration::from_secs(3)));
        h.insert("retry-after", " 1.5 ".parse().unwrap());
        assert_eq!(retry_after(&h), wait(Duration::from_millis(1500)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), wait(Duration::ZERO));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), wait(Duration::from_millis(250)));
        h.remove("retry-after-ms");
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    /// Every numeric form `Duration::from_secs_f64` would panic on.
    #[test]
    fn unrepresentable_retry_afters_are_unusable_not_a_panic() {
        let unusable = [
            "1e300", "-1", "-0.5", "NaN", "nan", "inf", "-inf", "infinity", "1e25", "1e400",
        ];
        for header in ["retry-after", "retry-after-ms"] {
            for raw in unusable {
                let mut h = reqwest::header::HeaderMap::new();
                h.insert(header, raw.parse().unwrap());
                assert_eq!(
                    retry_after(&h),
                    Some(RetryAfter::Unusable(raw.to_string())),
                    "{header}: {raw}"
                );
            }
        }
        // Large but representable: a real wait, which the deadline then refuses.
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "1e12".parse().unwrap());
        assert_eq!(
            retry_after(&h),
            wait(Duration::from_secs(1_000_000_000_000))
        );
        // A negative zero is no wait at all.
        h.insert("retry-after", "-0".parse().unwrap());
        assert_eq!(retry_after(&h), wait(Duration::ZERO));
        // An unusable retry-after-ms wins over a usable Retry-After, as any
        // retry-after-ms does.
        h.insert("retry-after", "1".parse().unwrap());
        h.insert("retry-after-ms", "NaN".parse().unwrap());
        assert_eq!(retry_after(&h), Some(RetryAfter::Unusable("NaN".into())));
        // A far-future date is a long wait, not an overflow.
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "retry-after",
            "Fri, 31 Dec 9999 23:59:59 GMT".parse().unwrap(),
        );
        assert!(
            matches!(retry_after(&h), Some(RetryAfter::Wait(d)) if d > Duration::from_secs(1 << 37))
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        // Years that would overflow the day count are not dates.
        assert_eq!(
            http_date("Sun, 06 Nov 99999999999999999 08:49:37 GMT"),
            None
        );
        assert_eq!(
            http_date("Sun, 06 Nov -9223372036854775808 08:49:37 GMT"),
            None
        );
    }
}
