//! Settings cascade and the typed, validated `Config`.
//!
//! Order (later wins): the shipped `config/default.env` (compiled in, so the
//! binary needs no files) < `$RUMMY_HOME/.env` < `./.env` < process env.

use crate::model_spec::{check_model, ModelSpecError};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The shipped defaults, one documented line per setting.
pub const DEFAULT_ENV: &str = include_str!("../config/default.env");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be {expected} (got {value:?})")]
    Invalid {
        name: String,
        expected: &'static str,
        value: String,
    },
    #[error("could not read settings file {path}: {message}")]
    File { path: String, message: String },
    #[error("RUMMY_HOME is not set and no home directory could be found; set RUMMY_HOME")]
    NoHome,
}

/// A model alias seeded from `RUMMY_MODEL_{alias}` / `RUMMY_CONTEXT_{alias}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSetting {
    pub alias: String,
    pub actual: String,
    pub context_length: Option<i64>,
}

/// Connection settings of the OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSettings {
    pub base_url: String,
    pub api_key: Option<String>,
    /// Send `think: true` (upstream's wire); api.openai.com rejects it.
    pub think: bool,
}

/// Ollama's native API.
#[derive(Debug, Clone, PartialEq)]
pub struct OllamaSettings {
    pub base_url: String,
}

/// OpenRouter; inert until it has a key.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRouterSettings {
    pub base_url: String,
    pub api_key: Option<String>,
    /// `HTTP-Referer` attribution header.
    pub http_referer: Option<String>,
    /// `X-Title` attribution header.
    pub x_title: Option<String>,
}

/// xAI's responses API; inert until it has a key.
#[derive(Debug, Clone, PartialEq)]
pub struct XaiSettings {
    /// The responses endpoint itself, e.g. `https://api.x.ai/v1/responses`.
    pub base_url: String,
    pub api_key: Option<String>,
}

/// Provider retries (`RUMMY_LLM_*`): exponential backoff with jitter, each
/// error class bounded by its own deadline. A zero deadline turns that
/// class's retries off.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// First wait; it doubles per retry of the same class.
    pub base_delay: Duration,
    /// Longest backoff wait (a service's `Retry-After` may ask for more).
    pub max_delay: Duration,
    /// 429.
    pub rate_limit_deadline: Duration,
    /// 503 (model loading, service unavailable).
    pub unavailable_deadline: Duration,
    /// 502 and 504.
    pub gateway_deadline: Duration,
    /// Other 5xx.
    pub server_deadline: Duration,
    /// Network errors and `RUMMY_FETCH_TIMEOUT` timeouts.
    pub network_deadline: Duration,
}

impl Default for RetrySettings {
    /// The shipped defaults (`config/default.env`).
    fn default() -> Self {
        let ms = Duration::from_millis;
        RetrySettings {
            base_delay: ms(1_000),
            max_delay: ms(30_000),
            rate_limit_deadline: ms(600_000),
            unavailable_deadline: ms(600_000),
            gateway_deadline: ms(30_000),
            server_deadline: ms(60_000),
            network_deadline: ms(30_000),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub home: PathBuf,
    pub db_path: PathBuf,
    pub mmap_mb: u64,
    pub rpc_timeout: Duration,
    /// `RUMMY_RETENTION_DAYS`: finished runs idle longer are purged at
    /// start; `None` (unset or empty) keeps every run.
    pub retention_days: Option<u32>,
    /// `RUMMY_TRANSCRIPTS=1`: write each turn's exchange under `RUMMY_HOME/turns/`.
    pub transcripts: bool,
    pub debug: bool,
    pub max_turns: u32,
    pub max_commands: u32,
    pub max_strikes: u32,
    pub min_cycles: u32,
    pub max_cycle_period: u32,
    /// `RUMMY_PROPOSAL_TIMEOUT`: how long a proposal may stay unresolved
    /// before the server rejects it with outcome `timeout`; `None` waits
    /// forever, as upstream does.
    pub proposal_timeout: Option<Duration>,
    /// `RUMMY_YOLO=1`: every run's proposals are accepted by the server
    /// (as if each run had `attributes.yolo`); `ask_user` still waits.
    pub yolo: bool,
    /// `RUMMY_SH_TIMEOUT`: how long a command the server runs itself (yolo)
    /// may take before its process group is killed; `None` (empty or 0) =
    /// no limit.
    pub sh_timeout: Option<Duration>,
    /// `RUMMY_STREAM_MAX_BYTES`: output bytes kept per channel of such a
    /// command; `None` (empty or 0) = no cap.
    pub stream_max_bytes: Option<u64>,
    pub think: bool,
    pub budget_ceiling: f64,
    pub token_divisor: f64,
    pub max_entry_tokens: u32,
    pub fetch_timeout: Duration,
    pub temperature: Option<f64>,
    pub openai: Option<OpenAiSettings>,
    pub ollama: Option<OllamaSettings>,
    pub openrouter: Option<OpenRouterSettings>,
    pub xai: Option<XaiSettings>,
    pub retry: RetrySettings,
    pub models: Vec<ModelSetting>,
    /// Who may open the WebSocket (`RUMMY_ALLOWED_ORIGINS`, `_HOSTS`, `RUMMY_AUTH_TOKEN`).
    pub admission: AdmissionSettings,
    /// `RUMMY_PROJECT_ROOTS`: directories hello's `projectRoot` must lie in
    /// (empty = any directory). Absolute as read; the server canonicalizes
    /// them at boot.
    pub project_roots: Vec<PathBuf>,
}

/// Settings of the upgrade check (`server::admission`).
#[derive(Clone, Default, PartialEq)]
pub struct AdmissionSettings {
    /// Extra `Origin` values accepted besides the loopback ones on the bound
    /// port, normalized to lower case without a trailing `/`.
    pub allowed_origins: Vec<String>,
    /// Extra `Host` names accepted besides loopback names and the bind
    /// address, lower case, IPv6 literals without brackets.
    pub allowed_hosts: Vec<String>,
    /// Bearer token every upgrade must carry, when set.
    pub auth_token: Option<String>,
}

// Hand-written so the token never lands in a log or panic message.
impl std::fmt::Debug for AdmissionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionSettings")
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

type Vars = BTreeMap<String, String>;

fn parse_env_text(text: &str, origin: &str) -> Result<Vars, ConfigError> {
    let mut vars = Vars::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (key, value) = item.map_err(|e| ConfigError::File {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        vars.insert(key, value);
    }
    Ok(vars)
}

fn read_env_file(path: &Path) -> Result<Option<Vars>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_env_text(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

impl Config {
    /// Loads the full cascade from disk and the process environment.
    pub fn load() -> Result<Config, ConfigError> {
        let process: Vars = std::env::vars().collect();
        let local = read_env_file(Path::new(".env"))?.unwrap_or_default();
        // RUMMY_HOME itself may come from ./.env or the process environment.
        let home_hint = process
            .get("RUMMY_HOME")
            .or_else(|| local.get("RUMMY_HOME"))
            .filter(|v| !v.trim().is_empty())
            .cloned();
        let home = resolve_home(home_hint)?;
        let home_file = read_env_file(&home.join(".env"))?.unwrap_or_default();
        let mut vars = parse_env_text(DEFAULT_ENV, "config/default.env")?;
        vars.extend(home_file);
        vars.extend(local);
        vars.extend(process);
        vars.insert("RUMMY_HOME".into(), home.display().to_string());
        Self::from_map(vars)
    }

    /// Builds a config from the shipped defaults plus the given variables
    /// only (no files, no process env): for tests and embedding programs.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut all = parse_env_text(DEFAULT_ENV, "config/default.env")?;
        all.extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        if all.get("RUMMY_HOME").is_none_or(|v| v.trim().is_empty()) {
            let home = resolve_home(None)?;
            all.insert("RUMMY_HOME".into(), home.display().to_string());
        }
        Self::from_map(all)
    }

    fn from_map(vars: Vars) -> Result<Config, ConfigError> {
        let r = Reader { vars: &vars };
        let home = PathBuf::from(r.required_text("RUMMY_HOME")?);
        let db = PathBuf::from(r.text("RUMMY_DB_PATH").unwrap_or_else(|| "rummy.db".into()));
        let db_path = if db.is_absolute() { db } else { home.join(db) };
        let budget_ceiling = r.float("RUMMY_BUDGET_CEILING", 0.9)?;
        if !(budget_ceiling > 0.0 && budget_ceiling <= 1.0) {
            return Err(r.invalid("RUMMY_BUDGET_CEILING", "a number in (0, 1]"));
        }
        let token_divisor = r.float("RUMMY_TOKEN_DIVISOR", 2.0)?;
        if token_divisor <= 0.0 || !token_divisor.is_finite() {
            return Err(r.invalid("RUMMY_TOKEN_DIVISOR", "a positive number"));
        }
        let temperature = match r.text("RUMMY_TEMPERATURE") {
            None => None,
            Some(_) => {
                let t = r.float("RUMMY_TEMPERATURE", 0.5)?;
                if !(0.0..=2.0).contains(&t) {
                    return Err(r.invalid("RUMMY_TEMPERATURE", "a number between 0 and 2"));
                }
                Some(t)
            }
        };
        let fetch_ms = r.int("RUMMY_FETCH_TIMEOUT", 300_000)?;
        if fetch_ms == 0 {
            return Err(r.invalid("RUMMY_FETCH_TIMEOUT", "a positive number of milliseconds"));
        }
        let rpc_ms = r.int("RUMMY_RPC_TIMEOUT", 30_000)?;
        if rpc_ms == 0 {
            return Err(r.invalid("RUMMY_RPC_TIMEOUT", "a positive number of milliseconds"));
        }
        let max_turns = r.int("RUMMY_MAX_TURNS", 99)?;
        if max_turns == 0 {
            return Err(r.invalid("RUMMY_MAX_TURNS", "a positive integer"));
        }
        Ok(Config {
            bind: r.parsed("RUMMY_BIND", "an IP address", IpAddr::from([127, 0, 0, 1]))?,
            port: r.parsed("PORT", "a port number (0-65535)", 3044)?,
            home,
            db_path,
            mmap_mb: r.int("RUMMY_MMAP_MB", 0)?,
            rpc_timeout: Duration::from_millis(rpc_ms),
            retention_days: match r.int32("RUMMY_RETENTION_DAYS", 0)? {
                0 if r.text("RUMMY_RETENTION_DAYS").is_none() => None,
                0 => {
                    return Err(r.invalid(
                        "RUMMY_RETENTION_DAYS",
                        "a positive number of days, or empty to keep every run",
                    ))
                }
                days => Some(days),
            },
            transcripts: r.flag("RUMMY_TRANSCRIPTS"),
            debug: r.flag("RUMMY_DEBUG"),
            max_turns: u32::try_from(max_turns)
                .map_err(|_| r.invalid("RUMMY_MAX_TURNS", "a positive integer"))?,
            max_commands: r.int32("RUMMY_MAX_COMMANDS", 99)?,
            max_strikes: r.int32("RUMMY_MAX_STRIKES", 3)?,
            min_cycles: r.int32("RUMMY_MIN_CYCLES", 3)?,
            max_cycle_period: r.int32("RUMMY_MAX_CYCLE_PERIOD", 4)?,
            proposal_timeout: match r.int("RUMMY_PROPOSAL_TIMEOUT", 0)? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            think: r.flag("RUMMY_THINK"),
            yolo: r.flag("RUMMY_YOLO"),
            // The shipped 600 / 1 MiB are in default.env; an empty value
            // set over them means "off", as RUMMY_TEMPERATURE's does.
            sh_timeout: match r.parsed(
                "RUMMY_SH_TIMEOUT",
                "a whole number of seconds (0 or empty = no limit)",
                0u64,
            )? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            stream_max_bytes: match r.parsed(
                "RUMMY_STREAM_MAX_BYTES",
                "a whole number of bytes (0 or empty = no cap)",
                0u64,
            )? {
                0 => None,
                bytes => Some(bytes),
            },
            budget_ceiling,
            token_divisor,
            max_entry_tokens: r.int32("RUMMY_MAX_ENTRY_TOKENS", 512)?,
            fetch_timeout: Duration::from_millis(fetch_ms),
            temperature,
            openai: r.text("OPENAI_BASE_URL").map(|base_url| OpenAiSettings {
                base_url,
                api_key: r.text("OPENAI_API_KEY"),
                think: r.text("OPENAI_THINK").is_none() || r.flag("OPENAI_THINK"),
            }),
            ollama: r
                .text("OLLAMA_BASE_URL")
                .map(|base_url| OllamaSettings { base_url }),
            openrouter: r
                .text("OPENROUTER_BASE_URL")
                .map(|base_url| OpenRouterSettings {
                    base_url,
                    api_key: r.text("OPENROUTER_API_KEY"),
                    http_referer: r.text("RUMMY_HTTP_REFERER"),
                    x_title: r.text("RUMMY_X_TITLE"),
                }),
            xai: r.text("XAI_BASE_URL").map(|base_url| XaiSettings {
                base_url,
                api_key: r.text("XAI_API_KEY"),
            }),
            retry: r.retry()?,
            models: r.models()?,
            admission: r.admission()?,
            project_roots: r.project_roots()?,
        })
    }
}

fn resolve_home(hint: Option<String>) -> Result<PathBuf, ConfigError> {
    if let Some(h) = hint {
        return Ok(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".rummy"))
        .ok_or(ConfigError::NoHome)
}

/// `scheme://host[:port]` in lower case without a trailing `/`, the form
/// browsers send in `Origin`; `None` for anything else (paths, `null`, `*`).
pub fn normalize_origin(text: &str) -> Option<String> {
    let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority_ok = !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@'])
        && !authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
    (scheme_ok && authority_ok).then_some(lower)
}

/// A host name or IP literal as `Host` carries it without its port: lower
/// case, IPv6 without brackets; `None` when it is not one.
pub fn normalize_host_name(text: &str) -> Option<String> {
    let lower = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = lower
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&lower);
    if bare.contains(':') {
        return bare
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| ip.to_string());
    }
    let ok = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then(|| bare.to_string())
}

struct Reader<'a> {
    vars: &'a Vars,
}

impl Reader<'_> {
    /// A set, non-blank value.
    fn text(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required_text(&self, name: &str) -> Result<String, ConfigError> {
        self.text(name)
            .ok_or_else(|| self.invalid(name, "set to a non-empty value"))
    }

    fn invalid(&self, name: &str, expected: &'static str) -> ConfigError {
        ConfigError::Invalid {
            name: name.to_string(),
            expected,
            value: self.vars.get(name).cloned().unwrap_or_default(),
        }
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        expected: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.invalid(name, expected)),
        }
    }

    fn int(&self, name: &str, default: u64) -> Result<u64, ConfigError> {
        self.parsed(name, "a non-negative integer", default)
    }

    fn int32(&self, name: &str, default: u32) -> Result<u32, ConfigError> {
        self.parsed(name, "a non-negative integer", default)
    }

    fn float(&self, name: &str, default: f64) -> Result<f64, ConfigError> {
        let v: f64 = self.parsed(name, "a number", default)?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.invalid(name, "a finite number"))
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(
            self.text(name)
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("1" | "true" | "yes" | "on")
        )
    }

    fn millis(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
        Ok(Duration::from_millis(self.int(name, default_ms)?))
    }

    fn retry(&self) -> Result<RetrySettings, ConfigError> {
        let d = RetrySettings::default();
        let retry = RetrySettings {
            base_delay: self.millis("RUMMY_LLM_BACKOFF", d.base_delay)?,
            max_delay: self.millis("RUMMY_LLM_MAX_BACKOFF", d.max_delay)?,
            rate_limit_deadline: self
                .millis("RUMMY_LLM_RATE_LIMIT_DEADLINE", d.rate_limit_deadline)?,
            unavailable_deadline: self
                .millis("RUMMY_LLM_UNAVAILABLE_DEADLINE", d.unavailable_deadline)?,
            gateway_deadline: self.millis("RUMMY_LLM_GATEWAY_DEADLINE", d.gateway_deadline)?,
            server_deadline: self.millis("RUMMY_LLM_SERVER_DEADLINE", d.server_deadline)?,
            network_deadline: self.millis("RUMMY_LLM_NETWORK_DEADLINE", d.network_deadline)?,
        };
        if retry.base_delay.is_zero() {
            return Err(self.invalid("RUMMY_LLM_BACKOFF", "a positive number of milliseconds"));
        }
        if retry.max_delay < retry.base_delay {
            return Err(self.invalid(
                "RUMMY_LLM_MAX_BACKOFF",
                "a number of milliseconds no smaller than RUMMY_LLM_BACKOFF",
            ));
        }
        Ok(retry)
    }

    /// Comma-separated, blank items skipped.
    fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn admission(&self) -> Result<AdmissionSettings, ConfigError> {
        let mut allowed_origins = Vec::new();
        for item in self.list("RUMMY_ALLOWED_ORIGINS") {
            let origin = normalize_origin(&item).ok_or_else(|| {
                self.invalid(
                    "RUMMY_ALLOWED_ORIGINS",
                    "a comma-separated list of origins like http://localhost:5173 (scheme://host[:port], no path; not null)",
                )
            })?;
            allowed_origins.push(origin);
        }
        let mut allowed_hosts = Vec::new();
        for item in self.list("RUMMY_ALLOWED_HOSTS") {
            let host = normalize_host_name(&item).ok_or_else(|| {
                self.invalid(
                    "RUMMY_ALLOWED_HOSTS",
                    "a comma-separated list of host names or IP addresses, without scheme or port",
                )
            })?;
            allowed_hosts.push(host);
        }
        let auth_token = self.text("RUMMY_AUTH_TOKEN");
        // The token travels in a header and a query string: keep it to
        // characters both carry unchanged.
        if auth_token.as_deref().is_some_and(|t| {
            !t.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'&' && b != b'+')
        }) {
            return Err(self.invalid(
                "RUMMY_AUTH_TOKEN",
                "printable ASCII without spaces, '&' or '+'",
            ));
        }
        Ok(AdmissionSettings {
            allowed_origins,
            allowed_hosts,
            auth_token,
        })
    }

    fn project_roots(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let roots: Vec<PathBuf> = self
            .list("RUMMY_PROJECT_ROOTS")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if roots.iter().any(|r| !r.is_absolute()) {
            return Err(self.invalid(
                "RUMMY_PROJECT_ROOTS",
                "a comma-separated list of absolute directory paths",
            ));
        }
        Ok(roots)
    }

    fn models(&self) -> Result<Vec<ModelSetting>, ConfigError> {
        let mut models = Vec::new();
        for (key, value) in self.vars {
            let Some(alias) = key.strip_prefix("RUMMY_MODEL_") else {
                continue;
            };
            let actual = value.trim();
            if alias.is_empty() || actual.is_empty() {
                continue;
            }
            // The same rule addModel applies at runtime.
            match check_model(alias, actual, None) {
                Ok(()) => {}
                Err(ModelSpecError::UnknownProvider { .. }) => {
                    return Err(self.invalid(
                        key,
                        "{provider}/{model} with provider openai, ollama, openrouter or xai",
                    ))
                }
                Err(ModelSpecError::Alias(_)) => {
                    return Err(self.invalid(key, "named by an alias without whitespace or '/'"))
                }
                Err(_) => return Err(self.invalid(key, "{provider}/{model}, e.g. openai/gpt-4o")),
            }
            let context_key = format!("RUMMY_CONTEXT_{alias}");
            let context_length = match self.text(&context_key) {
                None => None,
                Some(v) => Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| self.invalid(&context_key, "a positive integer"))?,
                ),
            };
            models.push(ModelSetting {
                alias: alias.to_string(),
                actual: actual.to_string(),
                context_length,
            });
        }
        Ok(models)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("RUMMY_HOME", "/tmp/rummy-home")]
    }

    #[test]
    fn retention_is_off_unless_set_and_transcripts_need_a_yes() {
        let c = Config::from_vars(base()).unwrap();
        assert_eq!(c.retention_days, None);
        assert!(!c.transcripts);
        let mut vars = base();
        vars.push(("RUMMY_RETENTION_DAYS", "7"));
        vars.push(("RUMMY_TRANSCRIPTS", "1"));
        let c = Config::from_vars(vars).unwrap();
        assert_eq!(c.retention_days, Some(7));
        assert!(c.transcripts);
        for bad in ["0", "-3", "soon"] {
            let mut vars = base();
            vars.push(("RUMMY_RETENTION_DAYS", bad));
            let e = Config::from_vars(vars).unwrap_err().to_string();
            assert!(e.contains("RUMMY_RETENTION_DAYS"), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_match_upstream() {
        let c = Config::from_vars(base()).unwrap();
        assert_eq!(c.port, 3044);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.max_turns, 99);
        assert_eq!(c.max_commands, 99);
        assert_eq!(c.max_strikes, 3);
        assert_eq!(c.budget_ceiling, 0.9);
        assert_eq!(c.token_divisor, 2.0);
        assert_eq!(c.temperature, Some(0.5));
        assert_eq!(c.fetch_timeout, Duration::from_millis(300_000));
        assert_eq!(c.db_path, PathBuf::from("/tmp/rummy-home/rummy.db"));
        assert!(c.openai.is_none());
        assert!(c.ollama.is_none());
        assert!(c.xai.is_none());
        let openrouter = c.openrouter.unwrap();
        assert_eq!(openrouter.base_url, "https://openrouter.ai/api/v1");
        assert_eq!(openrouter.api_key, None);
        assert_eq!(openrouter.x_title.as_deref(), Some("RUMMY"));
        assert_eq!(c.retry, RetrySettings::default());
        assert!(c.models.is_empty());
        assert_eq!(c.proposal_timeout, None);
    }

    #[test]
    fn proposal_timeout_is_off_unless_set_to_seconds() {
        for (value, expected) in [
            ("", None),
            ("0", None),
            ("90", Some(Duration::from_secs(90))),
        ] {
            let mut vars = base();
            vars.push(("RUMMY_PROPOSAL_TIMEOUT", value));
            let c = Config::from_vars(vars).unwrap();
            assert_eq!(c.proposal_timeout, expected, "{value:?}");
        }
        for bad in ["-1", "1.5", "soon"] {
            let mut vars = base();
            vars.push(("RUMMY_PROPOSAL_TIMEOUT", bad));
            let err = Config::from_vars(vars).unwrap_err().to_string();
            assert!(
                err.starts_with("RUMMY_PROPOSAL_TIMEOUT must be a non-negative integer"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn command_limits_default_and_turn_off_with_zero_or_empty() {
        let c = Config::from_vars(base()).unwrap();
        assert_eq!(c.sh_timeout, Some(Duration::from_secs(600)));
        assert_eq!(c.stream_max_bytes, Some(1_048_576));
        for off in ["0", "", " "] {
            let mut vars = base();
            vars.push(("RUMMY_SH_TIMEOUT", off));
            vars.push(("RUMMY_STREAM_MAX_BYTES", off));
            let c = Config::from_vars(vars).unwrap();
            assert_eq!(c.sh_timeout, None, "{off:?}");
            assert_eq!(c.stream_max_bytes, None, "{off:?}");
        }
        let mut vars = base();
        vars.push(("RUMMY_SH_TIMEOUT", " 5 "));
        vars.push(("RUMMY_STREAM_MAX_BYTES", "4096"));
        let c = Config::from_vars(vars).unwrap();
        assert_eq!(c.sh_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.stream_max_bytes, Some(4096));
    }

    #[test]
    fn bad_command_limits_are_refused_by_name() {
        for (key, bad) in [
            ("RUMMY_SH_TIMEOUT", "-1"),
            ("RUMMY_SH_TIMEOUT", "1.5"),
            ("RUMMY_SH_TIMEOUT", "10m"),
            ("RUMMY_STREAM_MAX_BYTES", "1MiB"),
            ("RUMMY_STREAM_MAX_BYTES", "-5"),
        ] {
            let mut vars = base();
            vars.push((key, bad));
            let err = Config::from_vars(vars).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{key} must be a whole number of")),
                "{key}={bad}: {err}"
            );
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn provider_and_retry_settings() {
        let mut vars = base();
        vars.extend([
            ("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"),
            ("OPENAI_THINK", "false"),
            ("OLLAMA_BASE_URL", "http://127.0.0.1:11434"),
            ("XAI_BASE_URL", "https://api.x.ai/v1/responses"),
            ("XAI_API_KEY", "k"),
            ("RUMMY_LLM_BACKOFF", "5"),
            ("RUMMY_LLM_SERVER_DEADLINE", "0"),
        ]);
        let c = Config::from_vars(vars).unwrap();
        assert!(!c.openai.unwrap().think);
        assert_eq!(c.ollama.unwrap().base_url, "http://127.0.0.1:11434");
        assert_eq!(c.xai.unwrap().api_key.as_deref(), Some("k"));
        assert_eq!(c.retry.base_delay, Duration::from_millis(5));
        assert_eq!(c.retry.server_deadline, Duration::ZERO);
        let c = Config::from_vars([("RUMMY_HOME", "/h"), ("OPENAI_BASE_URL", "http://x")]).unwrap();
        assert!(c.openai.unwrap().think);
    }

    #[test]
    fn every_default_line_is_documented() {
        let mut previous_is_comment = false;
        for line in DEFAULT_ENV.lines() {
            let is_setting = !line.starts_with('#') && line.contains('=');
            if is_setting && !line.starts_with("RUMMY_MAX_UPDATE_REPEATS") {
                assert!(previous_is_comment, "undocumented setting: {line}");
            }
            previous_is_comment = line.starts_with('#') || (is_setting && previous_is_comment);
        }
    }

    #[test]
    fn later_values_override_and_models_are_seeded() {
        let mut vars = base();
        vars.extend([
            ("PORT", "0"),
            ("RUMMY_DB_PATH", "/abs/x.db"),
            ("RUMMY_MODEL_fake", "openai/fake-model"),
            ("RUMMY_CONTEXT_fake", "4096"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9"),
            ("RUMMY_TEMPERATURE", ""),
        ]);
        let c = Config::from_vars(vars).unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.db_path, PathBuf::from("/abs/x.db"));
        assert_eq!(c.temperature, None);
        assert_eq!(
            c.models,
            vec![ModelSetting {
                alias: "fake".into(),
                actual: "openai/fake-model".into(),
                context_length: Some(4096)
            }]
        );
        assert_eq!(c.openai.unwrap().base_url, "http://127.0.0.1:9");
    }

    #[test]
    fn admission_settings_are_parsed_and_normalized() {
        let c = Config::from_vars(base()).unwrap();
        assert_eq!(c.admission, AdmissionSettings::default());
        assert!(c.project_roots.is_empty());
        let mut vars = base();
        vars.extend([
            (
                "RUMMY_ALLOWED_ORIGINS",
                " http://LocalHost:5173/ ,, https://editor.example",
            ),
            ("RUMMY_ALLOWED_HOSTS", "Rummy.Internal, [FD00::1], 10.0.0.2"),
            ("RUMMY_AUTH_TOKEN", " s3cret "),
            ("RUMMY_PROJECT_ROOTS", "/srv/a, /srv/b"),
        ]);
        let c = Config::from_vars(vars).unwrap();
        assert_eq!(
            c.admission.allowed_origins,
            ["http://localhost:5173", "https://editor.example"]
        );
        assert_eq!(
            c.admission.allowed_hosts,
            ["rummy.internal", "fd00::1", "10.0.0.2"]
        );
        assert_eq!(c.admission.auth_token.as_deref(), Some("s3cret"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "Debug hides the token"
        );
        assert_eq!(
            c.project_roots,
            [PathBuf::from("/srv/a"), PathBuf::from("/srv/b")]
        );
    }

    #[test]
    fn bad_admission_settings_are_refused() {
        let cases = [
            ("RUMMY_ALLOWED_ORIGINS", "null"),
            ("RUMMY_ALLOWED_ORIGINS", "*"),
            ("RUMMY_ALLOWED_ORIGINS", "localhost:5173"),
            ("RUMMY_ALLOWED_ORIGINS", "http://localhost:5173/app"),
            ("RUMMY_ALLOWED_HOSTS", "http://rummy.internal"),
            ("RUMMY_ALLOWED_HOSTS", "rummy.internal:3044"),
            ("RUMMY_AUTH_TOKEN", "two words"),
            ("RUMMY_AUTH_TOKEN", "a&b"),
            ("RUMMY_PROJECT_ROOTS", "/srv/a,relative"),
        ];
        for (key, value) in cases {
            let mut vars = base();
            vars.push((key, value));
            let err = Config::from_vars(vars).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{key} must be")),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn bad_values_give_clear_errors() {
        let cases = [
            ("PORT", "http", "PORT must be a port number"),
            (
                "RUMMY_BUDGET_CEILING",
                "1.5",
                "RUMMY_BUDGET_CEILING must be a number in (0, 1]",
            ),
            (
                "RUMMY_TOKEN_DIVISOR",
                "0",
                "RUMMY_TOKEN_DIVISOR must be a positive number",
            ),
            (
                "RUMMY_MAX_TURNS",
                "-1",
                "RUMMY_MAX_TURNS must be a non-negative integer",
            ),
            (
                "RUMMY_MODEL_x",
                "nomodel",
                "RUMMY_MODEL_x must be {provider}/{model}",
            ),
            (
                "RUMMY_TEMPERATURE",
                "3",
                "RUMMY_TEMPERATURE must be a number between 0 and 2",
            ),
            (
                "RUMMY_MODEL_x",
                "opnai/gpt-4o",
                "RUMMY_MODEL_x must be {provider}/{model} with provider openai",
            ),
            (
                "RUMMY_LLM_BACKOFF",
                "0",
                "RUMMY_LLM_BACKOFF must be a positive number of milliseconds",
            ),
            (
                "RUMMY_LLM_MAX_BACKOFF",
                "500",
                "RUMMY_LLM_MAX_BACKOFF must be a number of milliseconds no smaller",
            ),
            (
                "RUMMY_LLM_GATEWAY_DEADLINE",
                "soon",
                "RUMMY_LLM_GATEWAY_DEADLINE must be a non-negative integer",
            ),
        ];
        for (key, value, expected) in cases {
            let mut vars = base();
            vars.push((key, value));
            let err = Config::from_vars(vars).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{key}={value}: {err}");
        }
    }
}
