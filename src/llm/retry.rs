//! Retrying provider calls: every retryable class gets exponential backoff
//! with jitter inside its own deadline (`RUMMY_LLM_*_DEADLINE`), counted
//! from that class's first failure. Classes keep separate clocks, so a
//! run that meets a 503 and then a 429 waits at most each deadline once.
//!
//! The waits are plain timers inside the caller's future: dropping the
//! future (a run abort) ends the wait at once.

use super::errors::{ErrorClass, LlmError, RetryAfter};
use crate::config::RetrySettings;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// One retry about to happen, for `run/progress` `retrying`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    /// How many calls have failed so far (1 after the first failure).
    pub attempt: u32,
    pub class: ErrorClass,
    /// The failure's message.
    pub error: String,
    /// How long we wait before the next call.
    pub delay: Duration,
}

/// Callback told about each retry before its wait.
pub type RetryObserver<'a> = &'a (dyn Fn(&RetryNotice) + Sync);

/// How long a class may keep failing before we give up; `None` = never retry.
pub fn deadline(settings: &RetrySettings, class: ErrorClass) -> Option<Duration> {
    let d = match class {
        ErrorClass::RateLimited => settings.rate_limit_deadline,
        ErrorClass::Unavailable => settings.unavailable_deadline,
        ErrorClass::Gateway => settings.gateway_deadline,
        ErrorClass::Server => settings.server_deadline,
        ErrorClass::Network | ErrorClass::Timeout => settings.network_deadline,
        ErrorClass::ContextExceeded
        | ErrorClass::Client
        | ErrorClass::Malformed
        | ErrorClass::NotConfigured => return None,
    };
    (!d.is_zero()).then_some(d)
}

struct ClassClock {
    first_failure: Instant,
    backoff: ExponentialBackoff,
}

/// Calls `call` until it succeeds, fails with a class that is not retried,
/// or a retryable class outlives its deadline (`RetriesExhausted`).
pub async fn with_retry<T, F, Fut>(
    settings: &RetrySettings,
    observer: RetryObserver<'_>,
    mut call: F,
) -> Result<T, LlmError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LlmError>>,
{
    let started = Instant::now();
    let builder = ExponentialBuilder::new()
        .with_min_delay(settings.base_delay)
        .with_max_delay(settings.max_delay)
        .with_jitter()
        .without_max_times();
    let mut clocks: HashMap<ErrorClass, ClassClock> = HashMap::new();
    let mut failures = 0u32;
    loop {
        let error = match call().await {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let class = error.class();
        let Some(limit) = deadline(settings, class) else {
            return Err(error);
        };
        failures += 1;
        let clock = clocks.entry(class).or_insert_with(|| ClassClock {
            first_failure: Instant::now(),
            backoff: builder.build(),
        });
        let remaining = limit.saturating_sub(clock.first_failure.elapsed());
        let backoff = clock
            .backoff
            .next()
            .unwrap_or(settings.max_delay)
            .min(settings.max_delay);
        // A Retry-After longer than what is left would only have us call
        // before the service is ready, or past the deadline: stop now.
        let delay = match error.retry_after() {
            Some(RetryAfter::Unusable(raw)) => Err(format!(
                "the service's Retry-After {raw:?} is not a wait that can be honoured"
            )),
            Some(RetryAfter::Wait(asked)) if *asked > remaining => Err(format!(
                "the service asked to wait {} s, past the {} s left",
                asked.as_secs(),
                remaining.as_secs()
            )),
            Some(RetryAfter::Wait(asked)) => Ok((*asked).max(backoff).min(remaining)),
            None if remaining.is_zero() => Err("deadline reached".to_string()),
            None => Ok(backoff.min(remaining)),
        };
        let delay = match delay {
            Ok(delay) => delay,
            Err(reason) => {
                return Err(LlmError::RetriesExhausted {
                    attempts: failures,
                    elapsed: started.elapsed(),
                    reason,
                    last: Box::new(error),
                })
            }
        };
        let notice = RetryNotice {
            attempt: failures,
            class,
            error: error.to_string(),
            delay,
        };
        tracing::warn!(
            class = %class,
            attempt = failures,
            delay_ms = delay.as_millis() as u64,
            "provider call failed, retrying: {}",
            notice.error
        );
        observer(&notice);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn fast() -> RetrySettings {
        RetrySettings {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            rate_limit_deadline: Duration::from_millis(500),
            unavailable_deadline: Duration::from_millis(30),
            gateway_deadline: Duration::from_millis(500),
            server_deadline: Duration::ZERO,
            network_deadline: Duration::from_millis(500),
        }
    }

    fn rate_limited(after: Option<Duration>) -> LlmError {
        LlmError::RateLimited {
            message: "429".into(),
            retry_after: after.map(RetryAfter::Wait),
        }
    }

    #[tokio::test]
    async fn retries_then_succeeds_and_reports_each_wait() {
        let seen = Mutex::new(Vec::new());
        let observer = |n: &RetryNotice| seen.lock().unwrap().push(n.clone());
        let mut calls = 0;
        let result = with_retry(&fast(), &observer, || {
            calls += 1;
            let n = calls;
            async move {
                match n {
                    1 => Err(rate_limited(Some(Duration::from_millis(20)))),
                    2 => Err(LlmError::Gateway {
                        status: 502,
                        message: "502".into(),
                    }),
                    _ => Ok("done"),
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), "done");
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].attempt, 1);
        assert_eq!(seen[0].class, ErrorClass::RateLimited);
        assert!(seen[0].delay >= Duration::from_millis(20), "{:?}", seen[0]);
        assert_eq!(seen[1].class, ErrorClass::Gateway);
        assert!(seen[1].delay <= Duration::from_millis(5));
    }

    #[tokio::test]
    async fn never_retries_what_waiting_cannot_fix() {
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&fast(), &|_| {}, || {
            calls += 1;
            async {
                Err(LlmError::Client {
                    status: 400,
                    message: "bad".into(),
                })
            }
        })
        .await;
        assert!(matches!(result, Err(LlmError::Client { .. })));
        assert_eq!(calls, 1);
        // A zero deadline turns a class off.
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&fast(), &|_| {}, || {
            calls += 1;
            async {
                Err(LlmError::Server {
                    status: 500,
                    message: "boom".into(),
                })
            }
        })
        .await;
        assert!(matches!(result, Err(LlmError::Server { .. })));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn a_deadline_ends_the_retries() {
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&fast(), &|_| {}, || {
            calls += 1;
            async {
                Err(LlmError::Unavailable {
                    message: "Loading model".into(),
                    retry_after: None,
                })
            }
        })
        .await;
        let e = result.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Unavailable);
        assert!(
            matches!(e, LlmError::RetriesExhausted { attempts, .. } if attempts as usize == calls)
        );
        assert!(calls > 2, "{calls}");
        assert!(e.to_string().contains("Loading model"), "{e}");
    }

    #[tokio::test]
    async fn a_retry_after_past_the_deadline_gives_up_at_once() {
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&fast(), &|_| {}, || {
            calls += 1;
            async { Err(rate_limited(Some(Duration::from_secs(3600)))) }
        })
        .await;
        assert!(matches!(
            result,
            Err(LlmError::RetriesExhausted { attempts: 1, .. })
        ));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn an_unusable_retry_after_gives_up_at_once_for_either_class() {
        for raw in ["1e300", "-5", "NaN", "inf"] {
            for unavailable in [false, true] {
                let asked = Some(RetryAfter::Unusable(raw.to_string()));
                let mut calls = 0;
                let result: Result<(), _> = with_retry(&fast(), &|_| {}, || {
                    calls += 1;
                    let retry_after = asked.clone();
                    async move {
                        Err(if unavailable {
                            LlmError::Unavailable {
                                message: "503".into(),
                                retry_after,
                            }
                        } else {
                            LlmError::RateLimited {
                                message: "429".into(),
                                retry_after,
                            }
                        })
                    }
                })
                .await;
                let e = result.unwrap_err();
                assert!(
                    matches!(e, LlmError::RetriesExhausted { attempts: 1, .. }),
                    "{raw}: {e}"
                );
                let class = if unavailable {
                    ErrorClass::Unavailable
                } else {
                    ErrorClass::RateLimited
                };
                assert_eq!(e.class(), class);
                assert!(e.to_string().contains(raw), "{e}");
                assert_eq!(calls, 1, "{raw}");
            }
        }
    }

    #[tokio::test]
    async fn the_longest_representable_wait_gives_up_without_overflow() {
        let mut calls = 0;
        let result: Result<(), _> = with_retry(&fast(), &|_| {}, || {
            calls += 1;
            async { Err(rate_limited(Some(Duration::MAX))) }
        })
        .await;
        assert!(matches!(
            result,
            Err(LlmError::RetriesExhausted { attempts: 1, .. })
        ));
        assert_eq!(calls, 1);
    }
}
