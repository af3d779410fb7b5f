//! Who may open the WebSocket, and which directory `rummy/hello` may bind.
//!
//! A web page the user has open can reach a loopback port, so the upgrade is
//! checked before any actor exists: its `Host` (DNS rebinding), its `Origin`
//! (cross-site pages) and, when one is configured, a bearer token. The rules
//! are pure functions of the request's parts so they can be tested without
//! a socket.

use crate::config::{normalize_host_name, normalize_origin, AdmissionSettings};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The parts of an upgrade request the rules look at. A header that is not
/// text should be passed as a value no rule accepts (e.g. `"<not text>"`),
/// never as `None`: a missing `Origin` is allowed, an unreadable one is not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Upgrade<'a> {
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The URL's query string, without the `?`.
    pub query: &'a str,
}

/// Why an upgrade was refused; the message is what the log line and the
/// response body say (never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request has no Host header")]
    NoHost,
    #[error(
        "Host {0:?} is not a loopback name, the bind address or listed in RUMMY_ALLOWED_HOSTS"
    )]
    Host(String),
    #[error(
        "Origin {0:?} is not this server's own loopback origin nor listed in RUMMY_ALLOWED_ORIGINS"
    )]
    Origin(String),
    #[error("RUMMY_AUTH_TOKEN is set and the request carries no token (Authorization: Bearer <token> or ?token=<token>)")]
    MissingToken,
    #[error("the request's token does not match RUMMY_AUTH_TOKEN")]
    BadToken,
}

impl Refusal {
    /// 401 when credentials are missing or wrong, 403 when the request comes
    /// from somewhere it may not.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingToken | Refusal::BadToken => 401,
            Refusal::NoHost | Refusal::Host(_) | Refusal::Origin(_) => 403,
        }
    }
}

/// The upgrade rules for one bound listener.
#[derive(Clone)]
pub struct Admission {
    bind: IpAddr,
    own_origins: [String; 3],
    origins: Vec<String>,
    hosts: Vec<String>,
    /// SHA-256 of the token: comparing digests keeps the comparison's time
    /// independent of both the token's content and its length.
    token: Option<[u8; 32]>,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Admission {
    /// `port` is the port actually bound (not a configured 0).
    pub fn new(settings: &AdmissionSettings, bind: IpAddr, port: u16) -> Admission {
        Admission {
            bind,
            own_origins: [
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
                format!("http://[::1]:{port}"),
            ],
            origins: settings.allowed_origins.clone(),
            hosts: settings.allowed_hosts.clone(),
            token: settings.auth_token.as_deref().map(digest),
        }
    }

    /// Checks Host, then Origin, then the token.
    pub fn check(&self, req: &Upgrade<'_>) -> Result<(), Refusal> {
        let host = req.host.ok_or(Refusal::NoHost)?;
        if !self.host_allowed(host) {
            return Err(Refusal::Host(host.to_string()));
        }
        if let Some(origin) = req.origin {
            if !self.origin_allowed(origin) {
                return Err(Refusal::Origin(origin.to_string()));
            }
        }
        if let Some(expected) = &self.token {
            let given = req
                .authorization
                .and_then(bearer)
                .map(str::to_string)
                .or_else(|| query_param(req.query, "token"))
                .ok_or(Refusal::MissingToken)?;
            if !bool::from(digest(&given).ct_eq(expected)) {
                return Err(Refusal::BadToken);
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        if name == "localhost" || self.hosts.contains(&name) {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || (ip == self.bind && !ip.is_unspecified()),
            Err(_) => false,
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        // `null` (sandboxed frames, file: pages) fails to normalize.
        let Some(origin) = normalize_origin(origin) else {
            return false;
        };
        self.own_origins.contains(&origin) || self.origins.contains(&origin)
    }
}

/// The name part of a `Host` value (`name`, `name:port`, `[v6]:port`),
/// normalized like `RUMMY_ALLOWED_HOSTS`; `None` when malformed.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (inside, port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return None;
    }
    if !host.starts_with('[') && name.contains(':') {
        return None;
    }
    normalize_host_name(name)
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The first value of `name` in a form-encoded query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

/// Validates a hello `projectRoot` and resolves it: it must be absolute,
/// exist, be a directory and, when `allowed` is not empty, lie inside one
/// of those (already canonical) directories. Returns the canonical path.
/// Blocking (it touches the file system): call it off the async threads.
pub fn resolve_project_root(given: &str, allowed: &[PathBuf]) -> Result<String, String> {
    let path = Path::new(given);
    if !path.is_absolute() {
        return Err(format!(
            "rummy/hello: projectRoot must be an absolute path (got {given:?})"
        ));
    }
    let canonical = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("rummy/hello: projectRoot {given:?} does not exist")
        }
        _ => format!("rummy/hello: projectRoot {given:?} cannot be resolved: {e}"),
    })?;
    if !canonical.is_dir() {
        return Err(format!(
            "rummy/hello: projectRoot {given:?} is not a directory"
        ));
    }
    if !allowed.is_empty() && !allowed.iter().any(|root| canonical.starts_with(root)) {
        let list: Vec<String> = allowed.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "rummy/hello: projectRoot {given:?} is outside RUMMY_PROJECT_ROOTS ({})",
            list.join(", ")
        ));
    }
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| format!("rummy/hello: projectRoot {given:?} does not resolve to a UTF-8 path"))
}

/// Canonicalizes `RUMMY_PROJECT_ROOTS` at boot; each must be an existing
/// directory. The error names the entry and why.
pub fn canonical_project_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    roots
        .iter()
        .map(|root| match std::fs::canonicalize(root) {
            Ok(c) if c.is_dir() => Ok(c),
            Ok(_) => Err(format!("{} is not a directory", root.display())),
            Err(e) => Err(format!("{}: {e}", root.display())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 4321;

    fn admission(vars: &[(&str, &str)]) -> Admission {
        let mut all = vec![("RUMMY_HOME", "/tmp/rummy-admission")];
        all.extend_from_slice(vars);
        let config = crate::Config::from_vars(all.iter().copied()).unwrap();
        Admission::new(&config.admission, config.bind, PORT)
    }

    fn upgrade<'a>(host: &'a str, origin: Option<&'a str>) -> Upgrade<'a> {
        Upgrade {
            host: Some(host),
            origin,
            ..Upgrade::default()
        }
    }

    #[test]
    fn no_origin_and_own_origins_are_allowed() {
        let a = admission(&[]);
        let own = [
            "http://127.0.0.1:4321",
            "http://localhost:4321",
            "http://[::1]:4321",
            "HTTP://LocalHost:4321/",
        ];
        assert_eq!(a.check(&upgrade("127.0.0.1:4321", None)), Ok(()));
        for origin in own {
            assert_eq!(
                a.check(&upgrade("127.0.0.1:4321", Some(origin))),
                Ok(()),
                "{origin}"
            );
        }
    }

    #[test]
    fn foreign_and_null_origins_are_refused() {
        let a = admission(&[]);
        for origin in [
            "null",
            "http://evil.example",
            "http://127.0.0.1:4322",
            "http://localhost",
            "https://localhost:4321",
            "http://localhost:4321.evil.example",
            "",
        ] {
            let refusal = a
                .check(&upgrade("localhost:4321", Some(origin)))
                .unwrap_err();
            assert_eq!(refusal, Refusal::Origin(origin.to_string()), "{origin}");
            assert_eq!(refusal.status(), 403);
        }
    }

    #[test]
    fn configured_origins_are_allowed() {
        let a = admission(&[(
            "RUMMY_ALLOWED_ORIGINS",
            "http://localhost:5173/, https://Editor.Example",
        )]);
        for origin in ["http://localhost:5173", "https://editor.example"] {
            assert_eq!(a.check(&upgrade("localhost", Some(origin))), Ok(()));
        }
        assert!(a
            .check(&upgrade("localhost", Some("https://editor.example:8443")))
            .is_err());
    }

    #[test]
    fn hosts_must_be_loopback_bind_or_listed() {
        let a = admission(&[("RUMMY_ALLOWED_HOSTS", "rummy.internal,[fd00::1]")]);
        for host in [
            "localhost",
            "LOCALHOST:4321",
            "localhost.",
            "127.0.0.1",
            "127.0.0.2:80",
            "[::1]:4321",
            "[::1]",
            "rummy.internal:4321",
            "[fd00::1]:4321",
        ] {
            assert_eq!(a.check(&upgrade(host, None)), Ok(()), "{host}");
        }
        for host in [
            "evil.example:4321",
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1:4321",
            "localhost:notaport",
            "localhost:4321:1",
            "::1",
            "[::1",
            "",
            "<not text>",
        ] {
            let refusal = a.check(&upgrade(host, None)).unwrap_err();
            assert_eq!(refusal, Refusal::Host(host.to_string()), "{host}");
            assert_eq!(refusal.status(), 403);
        }
        assert_eq!(a.check(&Upgrade::default()).unwrap_err(), Refusal::NoHost);
    }

    #[test]
    fn the_bind_address_is_an_allowed_host_unless_unspecified() {
        let a = admission(&[("RUMMY_BIND", "192.168.1.5")]);
        assert_eq!(a.check(&upgrade("192.168.1.5:4321", None)), Ok(()));
        let a = admission(&[("RUMMY_BIND", "0.0.0.0")]);
        assert!(a.check(&upgrade("0.0.0.0:4321", None)).is_err());
    }

    #[test]
    fn host_is_checked_before_origin_and_token() {
        let a = admission(&[("RUMMY_AUTH_TOKEN", "s3cret")]);
        let req = upgrade("evil.example", Some("http://evil.example"));
        assert_eq!(
            a.check(&req).unwrap_err(),
            Refusal::Host("evil.example".into())
        );
        let req = upgrade("localhost", Some("http://evil.example"));
        assert_eq!(
            a.check(&req).unwrap_err(),
            Refusal::Origin("http://evil.example".into())
        );
    }

    #[test]
    fn a_set_token_is_required_by_header_or_query() {
        let a = admission(&[("RUMMY_AUTH_TOKEN", "s3cret-Token_1")]);
        let with = |authorization: Option<&'static str>, query: &'static str| Upgrade {
            host: Some("localhost"),
            origin: None,
            authorization,
            query,
        };
        assert_eq!(a.check(&with(Some("Bearer s3cret-Token_1"), "")), Ok(()));
        assert_eq!(a.check(&with(Some("bearer  s3cret-Token_1"), "")), Ok(()));
        assert_eq!(a.check(&with(None, "token=s3cret-Token_1")), Ok(()));
        assert_eq!(a.check(&with(None, "x=1&token=s3cret%2DToken_1")), Ok(()));
        // A non-bearer Authorization does not hide the query token.
        assert_eq!(
            a.check(&with(Some("Basic abc"), "token=s3cret-Token_1")),
            Ok(())
        );
        for (authorization, query, expected) in [
            (None, "", Refusal::MissingToken),
            (None, "tok=s3cret-Token_1", Refusal::MissingToken),
            (Some("Basic s3cret-Token_1"), "", Refusal::MissingToken),
            (Some("Bearer s3cret-token_1"), "", Refusal::BadToken),
            (Some("Bearer s3cret-Token_1x"), "", Refusal::BadToken),
            (Some("Bearer s3cret"), "", Refusal::BadToken),
            (None, "token=", Refusal::BadToken),
            (
                Some("Bearer wrong"),
                "token=s3cret-Token_1",
                Refusal::BadToken,
            ),
        ] {
            let refusal = a.check(&with(authorization, query)).unwrap_err();
            assert_eq!(refusal, expected, "{authorization:?} {query:?}");
            assert_eq!(refusal.status(), 401);
        }
    }

    #[test]
    fn without_a_token_setting_none_is_needed() {
        let a = admission(&[("RUMMY_AUTH_TOKEN", "")]);
        assert_eq!(a.check(&upgrade("localhost", None)), Ok(()));
    }

    #[test]
    fn refusal_messages_never_carry_the_token() {
        let a = admission(&[("RUMMY_AUTH_TOKEN", "s3cret")]);
        let req = Upgrade {
            host: Some("localhost"),
            authorization: Some("Bearer guess"),
            ..Upgrade::default()
        };
        let message = a.check(&req).unwrap_err().to_string();
        assert!(!message.contains("s3cret") && !message.contains("guess"));
    }

    #[test]
    fn project_roots_must_be_absolute_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file.txt");
        std::fs::write(&file, "x").unwrap();
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        let ok = resolve_project_root(dir.path().to_str().unwrap(), &[]).unwrap();
        assert_eq!(Path::new(&ok), canonical);
        let cases = [
            ("relative/dir".to_string(), "must be an absolute path"),
            (".".to_string(), "must be an absolute path"),
            (
                dir.path().join("missing").display().to_string(),
                "does not exist",
            ),
            (file.display().to_string(), "is not a directory"),
        ];
        for (given, expected) in cases {
            let err = resolve_project_root(&given, &[]).unwrap_err();
            assert!(err.starts_with("rummy/hello: projectRoot"), "{err}");
            assert!(err.contains(expected), "{given}: {err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_resolved_and_confined() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let allowed_root = canonical_project_roots(&[allowed.path().to_path_buf()]).unwrap();
        let inner = allowed.path().join("proj");
        std::fs::create_dir(&inner).unwrap();
        // A link inside the allowed tree that points out of it is refused.
        let escape = allowed.path().join("escape");
        std::os::unix::fs::symlink(outside.path(), &escape).unwrap();
        // A link outside pointing in is accepted, and resolved.
        let inward = outside.path().join("inward");
        std::os::unix::fs::symlink(&inner, &inward).unwrap();

        let ok = resolve_project_root(inward.to_str().unwrap(), &allowed_root).unwrap();
        assert_eq!(Path::new(&ok), std::fs::canonicalize(&inner).unwrap());
        let err = resolve_project_root(escape.to_str().unwrap(), &allowed_root).unwrap_err();
        assert!(err.contains("is outside RUMMY_PROJECT_ROOTS"), "{err}");
        let err =
            resolve_project_root(outside.path().to_str().unwrap(), &allowed_root).unwrap_err();
        assert!(err.contains("is outside RUMMY_PROJECT_ROOTS"), "{err}");
        // A sibling whose name merely starts with the allowed root's name.
        let sibling = format!("{}-x", allowed_root[0].display());
        std::fs::create_dir(&sibling).unwrap();
        let err = resolve_project_root(&sibling, &allowed_root).unwrap_err();
        std::fs::remove_dir(&sibling).unwrap();
        assert!(err.contains("is outside RUMMY_PROJECT_ROOTS"), "{err}");
    }

    #[test]
    fn boot_roots_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = canonical_project_roots(std::slice::from_ref(&missing)).unwrap_err();
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
    }
}
