//! The pattern engine of the entry store: `hedmatch` (does the pattern match the whole subject,
//! used on paths) and `hedsearch` (is the pattern found inside the subject, used on bodies).
//!
//! One pattern string is read as exactly one of six kinds, detected in a fixed order (spec 01
//! §4): sed `s/a/b/flags`, regex `/body/flags`, JSONPath `$.…`, XPath `//…`, glob, literal. The
//! same code serves Rust callers and SQLite: [`register`] installs `hedmatch(pattern, subject)`
//! and `hedsearch(pattern, subject)` as deterministic SQL functions, so pattern filters run
//! inside the query instead of loading every row.
//!
//! Nothing here panics or fails on input: a pattern that does not compile (a bad regex, a
//! JSONPath or XPath syntax error, an invalid glob range) is kept as a pattern that matches
//! nothing, which is what a filter over rows needs.
//!
//! Globs follow upstream's picomatch settings (dotfiles on, no braces, no extglob, parentheses
//! literal) on top of `globset`; the places where globset and picomatch still differ are listed
//! on [`CompiledGlob`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use diesel::{QueryResult, SqliteConnection};
use globset::{GlobBuilder, GlobMatcher};
use regex::{Regex, RegexBuilder};

/// How many compiled patterns one thread keeps. Patterns come from model output and client
/// requests, so the cache must not grow without bound; when full it is simply emptied (a
/// pattern is cheap to compile again, and queries reuse a handful of patterns at a time).
const CACHE_LIMIT: usize = 512;

/// Deepest bracket/parenthesis nesting accepted in a JSONPath or XPath pattern. Their parsers
/// recurse per nesting level, and a stack overflow aborts the process instead of unwinding, so
/// absurdly nested patterns are refused up front (real queries nest a few levels at most).
const MAX_NESTING: usize = 32;

/// Longest JSONPath or XPath pattern accepted, for the same reason as [`MAX_NESTING`]: long
/// operator chains also recurse in those parsers. Paths are capped at 2048 characters anyway.
const MAX_QUERY_LEN: usize = 2048;

/// Deepest element nesting of an XML subject that XPath patterns evaluate. sxd-document's parser
/// takes time quadratic in the nesting depth (seconds at a few thousand levels), so one hostile
/// body must not stall every query that filters with an XPath; real documents are far shallower.
const MAX_XML_DEPTH: usize = 256;

/// XPath axis names; an `axis::` in a `/…` pattern marks it as XPath.
const XPATH_AXES: &[&str] = &[
    "child",
    "descendant",
    "descendant-or-self",
    "parent",
    "ancestor",
    "ancestor-or-self",
    "following",
    "following-sibling",
    "preceding",
    "preceding-sibling",
    "self",
    "attribute",
    "namespace",
];

/// XPath function names; `name(` inside a `[…]` of a `/…` pattern marks it as XPath.
const XPATH_FUNCTIONS: &[&str] = &[
    "position",
    "last",
    "contains",
    "starts-with",
    "not",
    "text",
    "count",
    "sum",
    "name",
    "local-name",
    "string-length",
    "normalize-space",
    "concat",
    "substring",
    "translate",
    "boolean",
    "number",
    "string",
    "true",
    "false",
    "ceiling",
    "floor",
    "round",
    "id",
    "lang",
    "comment",
    "processing-instruction",
];

/// A compiled pattern. Compile once with [`Pattern::compile`] (or let [`hedmatch`] /
/// [`hedsearch`] use their per-thread cache); a pattern that failed to compile matches nothing.
#[derive(Debug)]
pub enum Pattern {
    /// `s/search/replace/flags`. With flags, `search` is a regex compiled with them (`regex` is
    /// `None` when it does not compile); without flags, `search` is a plain substring.
    Sed {
        search: String,
        replace: String,
        flags: String,
        regex: Option<JsRegex>,
    },
    /// `/body/flags` with flags from `gimsuy`; `regex` is `None` when the body or the flags are
    /// invalid.
    Regex {
        body: String,
        flags: String,
        regex: Option<JsRegex>,
    },
    /// `$.…`, `$[…` or `$..`: the subject is parsed as JSON and matches when the query selects
    /// at least one node.
    JsonPath { query: Option<JsonQuery> },
    /// `//…`, or `/…` with an axis or a predicate: the subject is parsed as XML and matches when
    /// the expression selects at least one node. `valid` is false when the expression does not
    /// parse or cannot be evaluated safely (see [`Pattern::compile`]).
    XPath { expr: String, valid: bool },
    /// A picomatch-style glob; `None` when globset rejects it.
    Glob { glob: Option<CompiledGlob> },
    /// Anything else: equality for [`hedmatch`], substring for [`hedsearch`].
    Literal(String),
}

/// A JavaScript-style regex (body plus flags) compiled for stateless yes/no tests.
#[derive(Debug)]
pub struct JsRegex {
    regex: Regex,
    /// The `y` flag: every test starts at index 0, so a sticky regex must match there.
    sticky: bool,
}

/// A compiled JSONPath pattern.
#[derive(Debug)]
pub enum JsonQuery {
    /// Exactly `$..`: RFC 9535 rejects it; upstream selects the root and every descendant,
    /// which is something for any JSON document except `null` (its walk skips null nodes).
    AnyDocument,
    /// Everything else goes through the RFC 9535 evaluator.
    Query(serde_json_path::JsonPath),
}

/// A glob compiled the way upstream prepares it for picomatch (`dot`, no braces, no extglob,
/// `(`/`)` literal, the first lone `*` after `://` widened to `**`), on globset with
/// `literal_separator` so `*` and `?` never cross `/`.
///
/// Picomatch rules reproduced on top of globset: in [`hedmatch`] an empty subject never
/// matches and a subject equal to the prepared pattern text always does; leading `!`s negate
/// (`!!` cancels) and a leading `./` is dropped; `dir/**` also matches `dir`; a final segment
/// that is a lone `*` needs at least one character; classes negate with `^` only, never match
/// `/` when negated, and also match their own bracketed text when they hold no regex-special
/// character; `{`, `}` and stray `]` are literal; an unclosed `[` is literal.
///
/// Left as globset does it (rare in paths): `*` and `**` may match the segments `.` and `..`;
/// a trailing `/` on the subject is not forgiven; `?` and classes match one byte rather than
/// one UTF-16 unit of non-ASCII text; POSIX classes (`[[:alpha:]]`) are not understood; `]*`
/// in `scheme://` patterns is a plain star, not a regex quantifier; `**` crosses newlines.
#[derive(Debug)]
pub struct CompiledGlob {
    /// The pattern text picomatch would compare the subject against before matching.
    prepared: String,
    /// An odd number of leading `!`.
    negated: bool,
    matcher: GlobMatcher,
    /// For `dir/**`: `dir` alone, which picomatch also accepts.
    base: Option<GlobMatcher>,
    /// The last segment is a lone `*`, which picomatch requires to be non-empty.
    nonempty_tail: bool,
}

impl Pattern {
    /// Detects the kind of `pattern` (spec 01 §4, first rule that applies) and compiles it.
    /// Never fails: an invalid pattern compiles to one that matches nothing.
    pub fn compile(pattern: &str) -> Pattern {
        if let Some((search, replace, flags)) = parse_sed(pattern) {
            let regex = if flags.is_empty() {
                None
            } else {
                JsRegex::compile(&search, &flags)
            };
            return Pattern::Sed {
                search,
                replace,
                flags,
                regex,
            };
        }
        if let Some((body, flags)) = split_regex(pattern) {
            return Pattern::Regex {
                body: body.to_owned(),
                flags: flags.to_owned(),
                regex: JsRegex::compile(body, flags),
            };
        }
        if is_plausible_json_path(pattern) {
            return Pattern::JsonPath {
                query: compile_json_path(pattern),
            };
        }
        if is_xpath(pattern) {
            return Pattern::XPath {
                expr: pattern.to_owned(),
                valid: xpath_is_usable(pattern),
            };
        }
        if is_glob(pattern) {
            return Pattern::Glob {
                glob: compile_glob(pattern),
            };
        }
        Pattern::Literal(pattern.to_owned())
    }

    /// The detected kind: `"sed"`, `"regex"`, `"jsonpath"`, `"xpath"`, `"glob"` or `"literal"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Pattern::Sed { .. } => "sed",
            Pattern::Regex { .. } => "regex",
            Pattern::JsonPath { .. } => "jsonpath",
            Pattern::XPath { .. } => "xpath",
            Pattern::Glob { .. } => "glob",
            Pattern::Literal(_) => "literal",
        }
    }

    /// `hedmatch` semantics (paths): literal is equality, glob a full match, regex an
    /// unanchored test, sed a regex test with flags or a substring test without.
    pub fn matches_whole(&self, subject: &str) -> bool {
        match self {
            Pattern::Literal(text) => subject == text,
            // picomatch's `isMatch` refuses an empty subject outright, then accepts the subject
            // equal to the pattern text, then runs its regex.
            Pattern::Glob { glob } => glob.as_ref().is_some_and(|g| {
                !subject.is_empty() && (subject == g.prepared || g.is_match(subject))
            }),
            _ => self.matches_within(subject),
        }
    }

    /// `hedsearch` semantics (bodies): literal is a substring test, glob is still an anchored
    /// full match (picomatch's regex), the other kinds test the same way as [`matches_whole`].
    ///
    /// Every test is stateless: a `g` or `y` flag never makes repeated tests on different rows
    /// alternate, as upstream's shared `RegExp.lastIndex` did (the spec's "Defect in 2.0.0").
    ///
    /// [`matches_whole`]: Pattern::matches_whole
    pub fn matches_within(&self, subject: &str) -> bool {
        match self {
            Pattern::Literal(text) => subject.contains(text.as_str()),
            Pattern::Glob { glob } => glob.as_ref().is_some_and(|g| g.is_match(subject)),
            Pattern::Regex { regex, .. } => regex.as_ref().is_some_and(|re| re.test(subject)),
            Pattern::Sed {
                search,
                flags,
                regex,
                ..
            } => {
                if flags.is_empty() {
                    subject.contains(search.as_str())
                } else {
                    regex.as_ref().is_some_and(|re| re.test(subject))
                }
            }
            Pattern::JsonPath { query } => query.as_ref().is_some_and(|q| q.matches(subject)),
            Pattern::XPath { expr, valid } => *valid && xpath_matches(expr, subject),
        }
    }
}

/// Does `pattern` match the whole of `subject`? (SQL `hedmatch`; compiled patterns are cached.)
pub fn hedmatch(pattern: &str, subject: &str) -> bool {
    with_compiled(pattern, |p| p.matches_whole(subject))
}

/// Is `pattern` found inside `subject`? (SQL `hedsearch`; compiled patterns are cached.)
pub fn hedsearch(pattern: &str, subject: &str) -> bool {
    with_compiled(pattern, |p| p.matches_within(subject))
}

/// Whether a path argument names a set of entries rather than one literal path: it contains a
/// glob character `*`, `?`, `[` or `]` (upstream's test for pattern deletes).
///
/// Deliberately not "the detector says anything but literal": the bare path `s/a/b.js` detects
/// as a sed pattern, yet as a path argument it names one file. Routing a literal-looking
/// pattern such as `file[12].js` to a pattern operation is harmless, because [`hedmatch`] then
/// tests equality.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', ']'])
}

/// The SQL functions as typed diesel expressions, e.g.
/// `.filter(patterns::sql::hedmatch(pattern, entries::path.nullable()))`.
pub mod sql {
    use diesel::sql_types::{Nullable, Text};

    diesel::define_sql_function! {
        /// `hedmatch(pattern, subject)`: 1 when the pattern matches the whole subject, 0 otherwise
        /// (also when either argument is NULL).
        fn hedmatch(pattern: Nullable<Text>, subject: Nullable<Text>) -> Bool;
    }

    diesel::define_sql_function! {
        /// `hedsearch(pattern, subject)`: 1 when the pattern is found in the subject, 0 otherwise
        /// (also when either argument is NULL).
        fn hedsearch(pattern: Nullable<Text>, subject: Nullable<Text>) -> Bool;
    }
}

/// Registers `hedmatch(pattern, subject)` and `hedsearch(pattern, subject)` on `conn` as
/// deterministic SQL functions. A NULL subject (or pattern) gives 0 rather than an error, so
/// nullable columns can be filtered directly.
pub fn register(conn: &mut SqliteConnection) -> QueryResult<()> {
    sql::hedmatch_utils::register_impl(
        conn,
        |pattern: Option<String>, subject: Option<String>| match (pattern, subject) {
            (Some(pattern), Some(subject)) => hedmatch(&pattern, &subject),
            _ => false,
        },
    )?;
    sql::hedsearch_utils::register_impl(conn, |pattern: Option<String>, subject: Option<String>| {
        match (pattern, subject) {
            (Some(pattern), Some(subject)) => hedsearch(&pattern, &subject),
            _ => false,
        }
    })
}

thread_local! {
    // Per thread rather than global: the SQL functions run on the store's own thread, so no
    // lock is needed, and compiled patterns never have to cross threads.
    static CACHE: RefCell<HashMap<String, Rc<Pattern>>> = RefCell::new(HashMap::new());
}

fn with_compiled<T>(pattern: &str, use_it: impl FnOnce(&Pattern) -> T) -> T {
    let cached = CACHE.try_with(|cache| {
        if let Some(found) = cache.borrow().get(pattern) {
            return Rc::clone(found);
        }
        let compiled = Rc::new(Pattern::compile(pattern));
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), Rc::clone(&compiled));
        compiled
    });
    match cached {
        Ok(compiled) => use_it(&compiled),
        // Only while the thread is being torn down: compile without caching.
        Err(_) => use_it(&Pattern::compile(pattern)),
    }
}

// ---------------------------------------------------------------------------------------------
// Detection

/// `s/search/replace[/flags[/…]]`: the text after `s/` split on every `/` whose previous
/// character is not a backslash; at least two parts. Escapes stay in `search`.
fn parse_sed(pattern: &str) -> Option<(String, String, String)> {
    let rest = pattern.strip_prefix("s/")?;
    let mut parts = vec![String::new()];
    // The character before the first one of `rest` is the `/` of `s/`, never a backslash.
    let mut previous = '/';
    for c in rest.chars() {
        if c == '/' && previous != '\\' {
            parts.push(String::new());
        } else if let Some(current) = parts.last_mut() {
            current.push(c);
        }
        previous = c;
    }
    if parts.len() < 2 {
        return None;
    }
    let mut parts = parts.into_iter();
    let search = parts.next().unwrap_or_default();
    let replace = parts.next().unwrap_or_default();
    let flags = parts.next().unwrap_or_default();
    Some((search, replace, flags))
}

/// `/body/flags`: starts with `/`, more than two characters, and after the first character ends
/// with `/` followed only by flags from `gimsuy`. Returns (body, flags).
fn split_regex(pattern: &str) -> Option<(&str, &str)> {
    let rest = pattern.strip_prefix('/')?;
    if pattern.chars().count() <= 2 {
        return None;
    }
    let slash = rest.rfind('/')?;
    let flags = &rest[slash + 1..];
    if !flags.chars().all(|c| "gimsuy".contains(c)) {
        return None;
    }
    Some((&rest[..slash], flags))
}

/// `$.` followed by a letter, `_`, `*`, `@`, `.` or `[`, or `$[`, in both cases with no `/`.
/// (This also covers the exact pattern `$..`.)
fn is_plausible_json_path(pattern: &str) -> bool {
    if let Some(after) = pattern.strip_prefix("$.") {
        return after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "_*@.[".contains(c))
            && !pattern.contains('/');
    }
    pattern.starts_with("$[") && !pattern.contains('/')
}

/// `//` followed by a letter, `_`, `*`, `@` or `.`; or `/` with an axis (`child::`) or a
/// predicate that looks like XPath (`[@…]`, `[n]`, `[fn(…)]`).
fn is_xpath(pattern: &str) -> bool {
    if let Some(after) = pattern.strip_prefix("//") {
        if after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "_*@.".contains(c))
        {
            return true;
        }
    }
    pattern.starts_with('/') && (has_xpath_axis(pattern) || has_xpath_predicate(pattern))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Some run of `[A-Za-z0-9_-]` directly followed by `::`, less its leading dashes, is an axis
/// name. (Upstream scans with `(\w[\w-]*)(?=::)`; a name can only end where `::` follows, so
/// only whole runs count, starting at their first word character.)
fn has_xpath_axis(pattern: &str) -> bool {
    let bytes = pattern.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !(is_word_byte(bytes[start]) || bytes[start] == b'-') {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && (is_word_byte(bytes[end]) || bytes[end] == b'-') {
            end += 1;
        }
        if bytes[end..].starts_with(b"::") {
            let name = pattern[start..end].trim_start_matches('-');
            if XPATH_AXES.contains(&name) {
                return true;
            }
        }
        start = end;
    }
    false
}

/// Each `[…]` (non-empty, up to the first `]`, scanned left to right without overlap) whose
/// content starts with `@`, is a number, or calls an XPath function.
fn has_xpath_predicate(pattern: &str) -> bool {
    let mut index = 0;
    while let Some(open) = pattern[index..].find('[').map(|i| index + i) {
        let content_start = open + 1;
        match pattern[content_start..].find(']') {
            Some(len) if len > 0 => {
                let content = &pattern[content_start..content_start + len];
                if predicate_looks_like_xpath(content) {
                    return true;
                }
                index = content_start + len + 1;
            }
            _ => index = content_start,
        }
    }
    false
}

fn predicate_looks_like_xpath(content: &str) -> bool {
    if content.starts_with('@') {
        return true;
    }
    // JavaScript's trim also strips the byte order mark, which Rust's whitespace does not cover.
    let trimmed = content.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    calls_xpath_function(content)
}

/// A known function name at a word boundary, then optional whitespace, then `(`.
fn calls_xpath_function(content: &str) -> bool {
    XPATH_FUNCTIONS.iter().any(|name| {
        content.match_indices(name).any(|(at, _)| {
            let boundary = at == 0 || !is_word_byte(content.as_bytes()[at - 1]);
            boundary && content[at + name.len()..].trim_start().starts_with('(')
        })
    })
}

/// `**` anywhere, or a `*`/`?` at the start or after anything but `.` and `\`.
fn is_glob(pattern: &str) -> bool {
    if pattern.contains("**") {
        return true;
    }
    let mut previous: Option<char> = None;
    for c in pattern.chars() {
        if (c == '*' || c == '?') && !matches!(previous, Some('.' | '\\')) {
            return true;
        }
        previous = Some(c);
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Regex (JavaScript flags on the `regex` crate)

impl JsRegex {
    /// The body is read as JavaScript syntax (see [`js_regex_syntax`]). Flags: `i`
    /// case-insensitive, `m` multi-line, `s` dot matches newline, `y` sticky; `g`, `u`, `v`, `d`
    /// change nothing for a yes/no test. Unknown or repeated flags, or `u` with `v`, are errors
    /// in JavaScript, so they compile to `None` here, as does a body the `regex` crate rejects
    /// (look-around and backreferences, which it does not support, included).
    fn compile(body: &str, flags: &str) -> Option<JsRegex> {
        let mut seen = String::new();
        for flag in flags.chars() {
            if !"dgimsuvy".contains(flag) || seen.contains(flag) {
                return None;
            }
            seen.push(flag);
        }
        if seen.contains('u') && seen.contains('v') {
            return None;
        }
        let regex = RegexBuilder::new(&js_regex_syntax(body))
            .case_insensitive(seen.contains('i'))
            .multi_line(seen.contains('m'))
            .dot_matches_new_line(seen.contains('s'))
            .build()
            .ok()?;
        Some(JsRegex {
            regex,
            sticky: seen.contains('y'),
        })
    }

    /// A fresh test from index 0, as `RegExp.test` on a new object would run it.
    fn test(&self, subject: &str) -> bool {
        if self.sticky {
            // Leftmost-first search: if any match starts at 0, the first one found does.
            self.regex.find(subject).is_some_and(|m| m.start() == 0)
        } else {
            self.regex.is_match(subject)
        }
    }
}

/// Rewrites the JavaScript regex syntax that the `regex` crate reads differently: `\d`, `\w`
/// and `\b` are ASCII in JavaScript (Unicode in Rust); a `{` that does not start a `{n}`,
/// `{n,}` or `{n,m}` quantifier and a stray `}` or `]` are literal characters in JavaScript
/// (errors in Rust); inside a class `[` and `&`, `~`, `--` are plain members (Rust reads nested
/// classes and set operations there), `[\b]` is backspace, `[]` matches nothing and `[^]`
/// anything. Everything else is passed through; what neither reads the same way fails to
/// compile and so matches nothing.
fn js_regex_syntax(body: &str) -> String {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::with_capacity(body.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                match chars.get(i + 1) {
                    Some('d') => out.push_str("[0-9]"),
                    Some('D') => out.push_str("[^0-9]"),
                    Some('w') => out.push_str("[0-9A-Za-z_]"),
                    Some('W') => out.push_str("[^0-9A-Za-z_]"),
                    Some('b') => out.push_str(r"(?-u:\b)"),
                    Some('B') => out.push_str(r"(?-u:\B)"),
                    Some(c) => {
                        out.push('\\');
                        out.push(*c);
                    }
                    None => out.push('\\'),
                }
                i += 2;
            }
            '[' => i = push_js_class(&mut out, &chars, i),
            '{' => match quantifier_len(&chars[i..]) {
                Some(len) => {
                    out.extend(&chars[i..i + len]);
                    i += len;
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            c @ ('}' | ']') => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Length of a `{n}`, `{n,}` or `{n,m}` quantifier at the start of `chars`.
fn quantifier_len(chars: &[char]) -> Option<usize> {
    let digits = |from: usize| {
        chars.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|c| c.is_ascii_digit()).count()
        })
    };
    let min = digits(1);
    if min == 0 {
        return None;
    }
    let mut at = 1 + min;
    if chars.get(at) == Some(&',') {
        at += 1 + digits(at + 1);
    }
    (chars.get(at) == Some(&'}')).then_some(at + 1)
}

/// Writes the JavaScript class opening at `open`; returns the index after it.
fn push_js_class(out: &mut String, chars: &[char], open: usize) -> usize {
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        out.push_str(if negated { r"[\s\S]" } else { r"[^\s\S]" });
        return i + 1;
    }
    out.push('[');
    if negated {
        out.push('^');
    }
    while let Some(&c) = chars.get(i) {
        match c {
            ']' => {
                out.push(']');
                return i + 1;
            }
            '\\' => {
                match chars.get(i + 1) {
                    Some('d') => out.push_str("0-9"),
                    Some('w') => out.push_str("0-9A-Za-z_"),
                    Some('b') => out.push_str(r"\x08"),
                    Some(c) => {
                        out.push('\\');
                        out.push(*c);
                    }
                    None => out.push('\\'),
                }
                i += 2;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str(r"\-");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Unterminated: left unterminated, so it fails to compile as it does in JavaScript.
    i
}

// ---------------------------------------------------------------------------------------------
// JSONPath

fn compile_json_path(pattern: &str) -> Option<JsonQuery> {
    if pattern == "$.." {
        return Some(JsonQuery::AnyDocument);
    }
    if pattern.len() > MAX_QUERY_LEN || nesting_depth(pattern) > MAX_NESTING {
        return None;
    }
    serde_json_path::JsonPath::parse(pattern)
        .ok()
        .map(JsonQuery::Query)
}

impl JsonQuery {
    /// The subject parses as JSON and the query selects at least one node (a `null` value
    /// counts as a node).
    fn matches(&self, subject: &str) -> bool {
        // serde_json refuses documents nested deeper than 128 levels, so neither parsing nor
        // the query's recursive descent can exhaust the stack.
        let Ok(document) = serde_json::from_str::<serde_json::Value>(subject) else {
            return false;
        };
        match self {
            JsonQuery::AnyDocument => !document.is_null(),
            JsonQuery::Query(path) => !path.query(&document).is_empty(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XPath

/// Whether `expr` can be evaluated without risk: it parses, is not absurdly nested or long, and
/// has no namespace prefix. sxd-xpath panics on a prefix it cannot resolve, and patterns come
/// with no namespace bindings, so a prefixed name could never match anyway (upstream's xpath
/// library fails the same way). Outside string literals a single `:` only occurs in a prefixed
/// name (`::` is the axis separator).
fn xpath_is_usable(expr: &str) -> bool {
    if expr.len() > MAX_QUERY_LEN || nesting_depth(expr) > MAX_NESTING {
        return false;
    }
    if has_prefixed_name(expr) {
        return false;
    }
    matches!(
        catch_unwind(|| sxd_xpath::Factory::new().build(expr).map(|x| x.is_some())),
        Ok(Ok(true))
    )
}

fn has_prefixed_name(expr: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ':' => {
                if chars.peek() == Some(&':') {
                    chars.next();
                } else {
                    return true;
                }
            }
            None => {}
        }
    }
    false
}

/// The subject parses as XML and the expression selects at least one node. Other result types
/// (numbers, strings, booleans) do not count as a match.
fn xpath_matches(expr: &str, subject: &str) -> bool {
    // sxd-xpath still has `expect`s on paths we believe unreachable after `xpath_is_usable`;
    // a panic there must not take a query (or the store thread) down, so it reads as no match.
    if xml_nesting_exceeds(subject, MAX_XML_DEPTH) {
        return false;
    }
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(package) = sxd_document::parser::parse(subject) else {
            return false;
        };
        let document = package.as_document();
        let Ok(Some(xpath)) = sxd_xpath::Factory::new().build(expr) else {
            return false;
        };
        let context = sxd_xpath::Context::new();
        matches!(
            xpath.evaluate(&context, document.root()),
            Ok(sxd_xpath::Value::Nodeset(nodes)) if nodes.size() > 0
        )
    }))
    .unwrap_or(false)
}

/// Whether elements nest deeper than `limit`, by a light scan that skips comments, CDATA,
/// processing instructions and declarations and honours quotes inside tags. Text that is not
/// well-formed may be miscounted; the parser rejects it anyway.
fn xml_nesting_exceeds(xml: &str, limit: usize) -> bool {
    let bytes = xml.as_bytes();
    let skip_past = |from: usize, end: &str| xml[from..].find(end).map(|at| from + at + end.len());
    let mut depth = 0_usize;
    let mut i = 0;
    while let Some(open) = xml[i..].find('<').map(|at| i + at) {
        let rest = &bytes[open..];
        let next = if rest.starts_with(b"<!--") {
            skip_past(open + 4, "-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(open + 9, "]]>")
        } else if rest.starts_with(b"<?") {
            skip_past(open + 2, "?>")
        } else if rest.starts_with(b"<!") {
            skip_past(open + 2, ">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_past(open + 2, ">")
        } else {
            // A start tag: find its `>` outside attribute quotes.
            let mut quote = None;
            let mut end = None;
            for (at, &b) in bytes.iter().enumerate().skip(open + 1) {
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => quote = Some(b),
                    None if b == b'>' => {
                        end = Some(at);
                        break;
                    }
                    None => {}
                }
            }
            end.map(|at| {
                if bytes[at - 1] != b'/' {
                    depth += 1;
                }
                at + 1
            })
        };
        if depth > limit {
            return true;
        }
        match next {
            Some(next) => i = next,
            // Unterminated markup: not well-formed, the parser will refuse it.
            None => return false,
        }
    }
    false
}

/// Deepest nesting of `(` and `[` outside quoted string literals.
fn nesting_depth(text: &str) -> usize {
    let mut quote: Option<char> = None;
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    deepest
}

// ---------------------------------------------------------------------------------------------
// Glob

impl CompiledGlob {
    /// Picomatch's regex test (without the equality shortcut, which only `hedmatch` applies).
    fn is_match(&self, subject: &str) -> bool {
        let matched = (self.matcher.is_match(subject)
            || self.base.as_ref().is_some_and(|b| b.is_match(subject)))
            && (!self.nonempty_tail || !(subject.is_empty() || subject.ends_with('/')));
        matched != self.negated
    }
}

/// Prepares the pattern as upstream does before handing it to picomatch, then rewrites it into
/// globset's dialect.
fn compile_glob(pattern: &str) -> Option<CompiledGlob> {
    let prepared = widen_scheme_star(&pattern.replace('(', r"\(").replace(')', r"\)"));

    // Picomatch's own reading of the pattern: leading `!`s negate, a leading `./` is dropped
    // (in either order).
    let mut bangs = 0;
    let mut body = prepared.as_str();
    loop {
        if let Some(rest) = body.strip_prefix('!') {
            bangs += 1;
            body = rest;
        } else if let Some(rest) = body.strip_prefix("./") {
            body = rest;
        } else {
            break;
        }
    }

    let translated = to_globset_syntax(body);
    // A `*` right after `/` is never escaped, so no escape check is needed here.
    let nonempty_tail = translated == "*" || translated.ends_with("/*");
    let base = match translated.strip_suffix("/**") {
        Some(base) if !ends_escaped(base) => Some(build_glob(base)?),
        _ => None,
    };
    Some(CompiledGlob {
        matcher: build_glob(&translated)?,
        prepared,
        negated: bangs % 2 == 1,
        base,
        nonempty_tail,
    })
}

/// Whether the character after `text` would be escaped by a trailing run of backslashes.
fn ends_escaped(text: &str) -> bool {
    (text.len() - text.trim_end_matches('\\').len()) % 2 == 1
}

fn build_glob(glob: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .case_insensitive(false)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

/// In a `scheme://` pattern the first `://*` that is not already `://**` becomes `://**`, so
/// `known://*` spans `/` while every other `*` stays inside one segment.
fn widen_scheme_star(pattern: &str) -> String {
    let mut from = 0;
    while let Some(at) = pattern[from..].find("://*").map(|i| from + i) {
        let star_end = at + "://*".len();
        if !pattern[star_end..].starts_with('*') {
            return format!("{}*{}", &pattern[..star_end], &pattern[star_end..]);
        }
        from = at + 1;
    }
    pattern.to_owned()
}

/// Rewrites picomatch syntax (as upstream configures it) into globset syntax: braces and stray
/// `]` become literal, classes are read as picomatch reads them (see [`push_class`]), an
/// unclosed `[` and a trailing lone `\` become literal. Escapes are kept as escapes.
fn to_globset_syntax(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                match chars.get(i + 1) {
                    Some(next) => {
                        out.push('\\');
                        out.push(*next);
                    }
                    None => out.push_str(r"\\"),
                }
                i += 2;
            }
            '{' | '}' | ']' => {
                out.push('\\');
                out.push(chars[i]);
                i += 1;
            }
            '[' => match class_end(&chars, i) {
                Some(end) => {
                    push_class(&mut out, &chars[i + 1..end]);
                    i = end + 1;
                }
                None => {
                    out.push_str(r"\[");
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Index of the `]` closing the class opened at `open`, by picomatch's rules: a `]` right
/// after the `[` is a member; any later `]` (even right after `[^`) closes.
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut j = open + 1;
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    chars
        .get(j..)?
        .iter()
        .position(|&c| c == ']')
        .map(|p| j + p)
}

/// Characters that stop picomatch from also matching a class as its literal text.
const REGEX_SPECIAL: &str = "-*+?.^${}(|)[]";

/// Writes picomatch's `[content]` in globset syntax. Picomatch 4 (as upstream configures it)
/// negates only with `^`, and a negated class never matches `/`; `!` is an ordinary member. A
/// class with no regex-special character also matches its own bracketed text, so `[id]`
/// matches `i`, `d` or `[id]` itself (route folders such as `pages/[id]/`).
fn push_class(out: &mut String, content: &[char]) {
    let class = class_syntax(content);
    if content.iter().any(|c| REGEX_SPECIAL.contains(*c)) {
        out.push_str(&class);
        return;
    }
    // Upstream braces are escaped before this point, so this alternation is never nested.
    out.push('{');
    out.push_str(&class);
    out.push_str(r",\[");
    for c in content {
        out.push('\\');
        out.push(*c);
    }
    out.push_str(r"\]}");
}

fn class_syntax(content: &[char]) -> String {
    let members: Vec<char> = match content {
        ['^', rest @ ..] => {
            let mut members = rest.to_vec();
            if !members.contains(&'/') {
                add_member(&mut members, '/');
            }
            return format!("[!{}]", members.iter().collect::<String>());
        }
        // globset would read a leading `!` as negation, so it moves.
        ['!'] => return r"\!".to_owned(),
        // A range starting at `!` is `!` plus the range from the next character, `"`.
        ['!', '-', end, rest @ ..] => {
            let mut members = vec!['"', '-', *end];
            members.extend_from_slice(rest);
            add_member(&mut members, '!');
            members
        }
        ['!', rest @ ..] => {
            let mut members = rest.to_vec();
            add_member(&mut members, '!');
            members
        }
        _ => content.to_vec(),
    };
    format!("[{}]", members.iter().collect::<String>())
}

/// Adds a one-character member without letting a trailing literal `-` start a range.
fn add_member(members: &mut Vec<char>, member: char) {
    if members.len() > 1 && members.last() == Some(&'-') {
        members.insert(members.len() - 1, member);
    } else {
        members.push(member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::{Nullable, Text};
    use proptest::prelude::*;

    fn kind(pattern: &str) -> &'static str {
        Pattern::compile(pattern).kind()
    }

    /// (pattern, subject, hedmatch, hedsearch)
    fn check(cases: &[(&str, &str, bool, bool)]) {
        for &(pattern, subject, whole, within) in cases {
            assert_eq!(
                hedmatch(pattern, subject),
                whole,
                "hedmatch({pattern:?}, {subject:?}) [{}]",
                kind(pattern)
            );
            assert_eq!(
                hedsearch(pattern, subject),
                within,
                "hedsearch({pattern:?}, {subject:?}) [{}]",
                kind(pattern)
            );
        }
    }

    #[test]
    fn spec_verified_examples() {
        assert!(hedmatch("known://*", "known://a/b"));
        assert!(!hedmatch("known://plan_*", "known://plan_a/b"));
        assert!(!hedmatch("log://turn_1/*", "log://turn_1/set/x"));
        assert!(!hedmatch("*", "src/app.js"));
        assert!(hedmatch("src/**", "src/a/b.js"));
        assert!(hedmatch("src/*.js", "src/.hidden.js"));
        assert_eq!(kind("file[12].js"), "literal");
        assert_eq!(kind("file.*"), "literal");
        assert!(hedmatch("file[12].js", "file[12].js"));
        assert!(!hedmatch("file[12].js", "file1.js"));
        assert!(hedmatch("file.*", "file.*"));
        assert!(!hedmatch("file.*", "file.js"));
        assert_eq!(kind("file[12]*.js"), "glob");
        assert!(hedmatch("file[12]*.js", "file1.js"));
        assert!(hedsearch("*auth*", "the auth flow"));
        assert!(!hedsearch("*auth*", "a/b auth"));
        assert_eq!(kind("s/a/b.js"), "sed");
        assert!(hedmatch("s/a/b.js", "xa"));
        assert!(hedmatch("s/a/b.js", "s/a/b.js"));
        assert!(!hedmatch("s/a/b.js", "src/b.js"));
    }

    #[test]
    fn detection_order_and_rules() {
        let cases = [
            ("s/a/b/", "sed"),
            ("s/a/b/gi", "sed"),
            ("s/a/b", "sed"),
            ("s/abc", "literal"),
            ("s/*", "glob"),
            (r"s/a\/b", "literal"),
            ("/a/", "regex"),
            ("/a/gimsuy", "regex"),
            ("/^(index|utils)/", "regex"),
            ("/a/x", "literal"),
            ("//", "literal"),
            ("//ig", "regex"),
            ("/$.+/", "regex"),
            ("$.name", "jsonpath"),
            ("$.*", "jsonpath"),
            ("$..", "jsonpath"),
            ("$..value", "jsonpath"),
            ("$[0]", "jsonpath"),
            ("$.", "literal"),
            ("$.1", "literal"),
            ("$.a/b", "literal"),
            ("$[0]/x", "literal"),
            ("//item", "xpath"),
            ("//*", "xpath"),
            ("//@id", "xpath"),
            ("//.", "xpath"),
            ("//1", "literal"),
            ("/root/item[1]", "xpath"),
            ("/root/item[ 2 ]", "xpath"),
            ("/root/item[@id]", "xpath"),
            ("/root/item[position()>1]", "xpath"),
            ("/root/item[starts-with (name, 'a')]", "xpath"),
            ("/root/item[mycount(x)]", "literal"),
            ("//item/child::name", "xpath"),
            ("/a/descendant-or-self::b", "xpath"),
            ("/path/to/std::vector.html", "literal"),
            ("/a/x-child::b", "literal"),
            ("/a/-child::b", "xpath"),
            ("/a/[]", "literal"),
            ("**", "glob"),
            ("a**", "glob"),
            ("*.js", "glob"),
            ("????.ts", "glob"),
            ("a.?", "literal"),
            (r"a\*", "literal"),
            (r"\*a*", "glob"),
            ("known://*", "glob"),
            ("file+name.txt", "literal"),
            ("c++", "literal"),
            (":AI[]", "literal"),
            (r"\d+", "literal"),
            ("", "literal"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(kind(pattern), expected, "{pattern:?}");
        }
    }

    #[test]
    fn literal_cases() {
        check(&[
            ("readme.md", "readme.md", true, true),
            ("readme.md", "docs/readme.md", false, true),
            ("port = 3000", "const port = 3000;\n", false, true),
            (":AI[]", ":AI[]", true, true),
            (":AI[]", ":AI[x]", false, false),
            (r"\d+", r"\d+", true, true),
            (r"\d+", "123", false, false),
            ("Known", "known", false, false),
            ("missing", "nothing here", false, false),
            ("", "", true, true),
            ("", "anything", false, true),
            (
                "/path/to/std::vector.html",
                "/path/to/std::vector.html",
                true,
                true,
            ),
        ]);
    }

    #[test]
    fn glob_cases() {
        check(&[
            ("*.js", "index.js", true, true),
            ("*.js", "readme.md", false, false),
            ("*.js", "import from app.js", true, true),
            ("*.js", "src/index.js", false, false),
            ("????.ts", "test.ts", true, true),
            ("????.ts", "index.ts", false, false),
            ("src/**/*.ts", "src/a/b.ts", true, true),
            ("src/**/*.ts", "src/a.ts", true, true),
            ("src/**/*.ts", "lib/a.ts", false, false),
            ("**/*.test.*", "src/foo.test.js", true, true),
            ("**/*.test.*", "src/foo.js", false, false),
            ("**", "a/b/c", true, true),
            ("**/x", "x", true, true),
            ("*.foo.*", "bar.foo.baz", true, true),
            ("[abc]*.js", "alpha.js", true, true),
            ("[abc]*.js", "delta.js", false, false),
            ("[^a]*", "bx", true, true),
            ("[^a]*", "/x", false, false),
            ("[^a-]*", "-x", false, false),
            ("[^]*", "x", true, true),
            ("[^]*", "/", false, false),
            ("[a-]*", "-x", true, true),
            ("[]]*", "]x", true, true),
            ("[]a]*", "ax", true, true),
            // picomatch 4 negates with `^` only: `!` is a member.
            ("[!a]*", "/x", false, false),
            ("[!a]*", "bx", false, false),
            ("[!a]*", "!x", true, true),
            ("[!a]*", "ax", true, true),
            ("[!]*", "!x", true, true),
            ("[!a-]*", "-x", true, true),
            ("[!a-]*", "bx", false, false),
            ("[!-a]*", "Bx", true, true),
            ("[!-a]*", "!x", true, true),
            ("[!-a]*", "bx", false, false),
            // A class without regex-special characters also matches its bracketed text.
            ("pages/[id]/*.tsx", "pages/[id]/page.tsx", true, true),
            ("pages/[id]/*.tsx", "pages/i/page.tsx", true, true),
            ("pages/[id]/*.tsx", "pages/x/page.tsx", false, false),
            ("[a,b]*", "[a,b]x", true, true),
            ("[a,b]*", ",x", true, true),
            ("[a-c]*", "[a-c]x", false, false),
            ("x[]*", "x[]y", true, true),
            ("x[*", "x[yz", true, true),
            ("src/utils (copy)/*", "src/utils (copy)/file.js", true, true),
            ("log{a,b}*.txt", "log{a,b}.txt", true, true),
            ("log{a,b}*.txt", "loga.txt", false, false),
            ("*.JS", "a.js", false, false),
            ("src/*.js", "src/.hidden.js", true, true),
            ("a/**b", "a/xb", true, true),
            ("a/**b", "a/x/yb", false, false),
            ("a**b", "a/b", false, false),
            // picomatch: `dir/**` matches the directory itself too.
            ("src/**", "src", true, true),
            ("src/**", "src/", true, true),
            ("src/**", "srcx", false, false),
            // A lone `*` segment needs at least one character.
            ("*", "", false, false),
            ("src/*", "src/", false, false),
            ("src/*", "src/a", true, true),
            // Stars span newlines inside bodies, but never `/`.
            ("*auth*", "x\nauth", true, true),
            // Escapes.
            (r"\**", "*x", true, true),
            (r"\**", "x", false, false),
            ("a*\\", "ab\\", true, true),
            // Negation (picomatch's leading `!`).
            ("!*.js", "a.md", true, true),
            ("!*.js", "a.js", false, false),
            ("!!*.js", "a.js", true, true),
            // picomatch accepts the subject equal to the pattern text (hedmatch only).
            ("file[12]*.js", "file[12]*.js", true, true),
            ("file[1-2]*.js", "file[1-2]*.js", true, false),
            ("./a*", "ab", true, true),
            ("!./a*", "ab", false, false),
            ("./!a*", "b", true, true),
            // picomatch's isMatch refuses an empty subject; its regex (hedsearch) does not.
            ("**", "", false, true),
            ("!a*", "", false, true),
            // An invalid range compiles to a pattern that matches nothing.
            ("[z-a]*", "z", false, false),
        ]);
    }

    #[test]
    fn scheme_glob_cases() {
        check(&[
            ("known://*", "known://a/b", true, true),
            ("known://*", "known://", true, true),
            ("known://**", "known://a", true, true),
            ("known://auth_*", "known://auth_flow", true, true),
            ("known://auth_*", "known://db_type", false, false),
            ("known://plan_*", "known://plan_a/b", false, false),
            ("known://*_flow", "known://auth_flow", true, true),
            ("known://*_flow", "known://a/b_flow", false, false),
            ("log://turn_1/*", "log://turn_1/set", true, true),
            ("log://turn_1/*", "log://turn_1/set/x", false, false),
            ("log://turn_*/set/*", "log://turn_3/set/x", true, true),
            ("edit://*", "edit://3", true, true),
            ("known://*", "unknown://a", false, false),
            ("KNOWN://*", "known://a", false, false),
            // Only the first lone star after `://` widens.
            ("a://*/b://*", "a://x/y/b://z", true, true),
            ("a://*/b://*", "a://x/b://y/z", false, false),
        ]);
    }

    #[test]
    fn regex_cases() {
        check(&[
            ("/^(index|utils)/", "index.js", true, true),
            ("/^(index|utils)/", "readme.md", false, false),
            (r"/\.(js|ts)$/", "test.ts", true, true),
            (r"/\.(js|ts)$/", "test.py", false, false),
            ("/foo.+bar/", "foo123bar", true, true),
            (r"/\d+/", "abc123", true, true),
            (r"/\d+/", "abcdef", false, false),
            // Not anchored, even in hedmatch.
            ("/b/", "abc", true, true),
            ("/a/", "A", false, false),
            ("/a/i", "A", true, true),
            ("/^b/", "a\nb", false, false),
            ("/^b/m", "a\nb", true, true),
            ("/a.b/", "a\nb", false, false),
            ("/a.b/s", "a\nb", true, true),
            ("/b/y", "abc", false, false),
            ("/a/y", "abc", true, true),
            (r"/a\/b/", "xa/b", true, true),
            ("/$.+/", "anything", false, false),
            ("//ig", "anything", true, true),
            // Invalid regex or flags: matches nothing.
            ("/(/", "(", false, false),
            ("/a/gg", "a", false, false),
            ("/(?=a)/", "a", false, false),
            ("/(a)\\1/", "aa", false, false),
            // JavaScript syntax the regex crate reads differently.
            ("/{a,b}/m", ".known://{a,b}", true, true),
            (r"/function f\(\) {/", "function f() {}", true, true),
            ("/a{2}/", "baab", true, true),
            ("/a{2,}b/", "aaab", true, true),
            ("/a{,2}/", "a{,2}", true, true),
            ("/x]/", "x]", true, true),
            (r"/\d/", "٣", false, false),
            (r"/\w+$/", "é", false, false),
            (r"/\bé/", "aé", true, true),
            ("/[[]/", "[", true, true),
            ("/[a&&b]/", "&", true, true),
            ("/[a~~b]/", "~", true, true),
            ("/[a--]/", "-", true, true),
            (r"/[\d]/", "٣", false, false),
            (r"/[\w]/", "_", true, true),
            (r"/a[\b]/", "a\u{8}", true, true),
            ("/a[]/", "a", false, false),
            ("/a[^]b/", "a\nb", true, true),
            ("/[/", "[", false, false),
        ]);
    }

    #[test]
    fn regex_tests_are_stateless() {
        // Upstream's shared `g` RegExp alternated true/false across rows; every test here
        // stands alone.
        for pattern in ["/a/g", "/a/gy", "s/a/b/g", "s/a/b/gi"] {
            let compiled = Pattern::compile(pattern);
            for _ in 0..4 {
                assert!(
                    compiled.matches_whole("xa") || pattern.contains('y'),
                    "{pattern}"
                );
                assert!(hedmatch(pattern, "ab"), "{pattern}");
                assert!(hedsearch(pattern, "ab"), "{pattern}");
            }
        }
    }

    #[test]
    fn sed_cases() {
        check(&[
            ("s/3000/8080/", "3000", true, true),
            ("s/3000/8080/", "port = 3000", true, true),
            ("s/3000/8080/", "no match", false, false),
            // Without flags the search is a substring, even with regex metacharacters.
            ("s/a.c/x/", "abc", false, false),
            ("s/a.c/x/", "a.c", true, true),
            // With flags it is a regex.
            (r"s/\d+/NUM/g", "port = 3000", true, true),
            (r"s/\d+/NUM/g", "port", false, false),
            ("s/hello/world/gi", "HELLO", true, true),
            ("s/hello/world/g", "HELLO", false, false),
            ("s/^b/x/y", "bc", true, true),
            ("s/b/x/y", "abc", false, false),
            (r"s/a\/b/x/g", "a/b", true, true),
            (r"s/a\/b/x/", r"a\/b", true, true),
            // Bad flags or a bad regex: nothing.
            ("s/a/b/q", "a", false, false),
            ("s/(/b/g", "(", false, false),
            ("s/a/b/c/d", "a", false, false),
        ]);
        match Pattern::compile(r"s/\d+/NUM/gi") {
            Pattern::Sed {
                search,
                replace,
                flags,
                regex,
            } => {
                assert_eq!(
                    (search.as_str(), replace.as_str(), flags.as_str()),
                    (r"\d+", "NUM", "gi")
                );
                assert!(regex.is_some());
            }
            other => panic!("not sed: {other:?}"),
        }
    }

    #[test]
    fn jsonpath_cases() {
        let json = r#"{"name":"alice","items":[{"id":1},{"id":2}],"nested":{"deep":{"value":42}},"nothing":null}"#;
        check(&[
            ("$.name", json, true, true),
            ("$.nested.deep.value", json, true, true),
            ("$.items[0].id", json, true, true),
            ("$.items[*].id", json, true, true),
            ("$.items[5].id", json, false, false),
            ("$..value", json, true, true),
            ("$..missing", json, false, false),
            ("$.missing", json, false, false),
            ("$.nothing", json, true, true),
            ("$['name']", json, true, true),
            ("$.items[?@.id == 2]", json, true, true),
            ("$.items[?@.id == 3]", json, false, false),
            ("$.*", "{}", false, false),
            ("$[0]", "[1]", true, true),
            ("$..", "{}", true, true),
            ("$..", "1", true, true),
            ("$..", "null", false, false),
            ("$..", "not json", false, false),
            ("$.name", "not json", false, false),
            ("$.name", "", false, false),
            // Syntax errors match nothing.
            ("$.a b", r#"{"a b":1}"#, false, false),
            ("$[", "[1]", false, false),
        ]);
    }

    #[test]
    fn xpath_cases() {
        let xml = r#"<root><item id="3"><name>test</name></item><item id="5"/></root>"#;
        check(&[
            ("//item", xml, true, true),
            ("//missing", xml, false, false),
            ("//item[@id='3']", xml, true, true),
            ("//item[@id='99']", xml, false, false),
            ("/root/item[1]", xml, true, true),
            ("/root/item[3]", xml, false, false),
            ("/root/item[position()>1]", xml, true, true),
            ("//item/child::name", xml, true, true),
            ("//item/text()", xml, false, false),
            ("//name/text()", xml, true, true),
            ("//@id", xml, true, true),
            ("//*", "<b/>", true, true),
            ("//a | //b", "<b/>", true, true),
            ("//item", "  <root><item/></root>\n", true, true),
            (
                "//item",
                r#"<?xml version="1.0"?><root><item/></root>"#,
                true,
                true,
            ),
            ("//div", "just plain text", false, false),
            ("//item", "<root><item></root>", false, false),
            ("//item", "", false, false),
            // Not a node-set: no match.
            ("//count(a)", "<a/>", false, false),
            // A namespace prefix cannot be resolved: no match, and no panic in sxd-xpath.
            (
                "//p:item",
                r#"<root xmlns:p="u"><p:item/></root>"#,
                false,
                false,
            ),
            (
                "//item[@p:id]",
                r#"<root xmlns:p="u"><item p:id="1"/></root>"#,
                false,
                false,
            ),
            // A colon inside a string literal is fine.
            (
                "//item[@id='a:b']",
                r#"<root><item id="a:b"/></root>"#,
                true,
                true,
            ),
            // Syntax errors match nothing.
            ("//item[", xml, false, false),
        ]);
    }

    #[test]
    fn hostile_inputs_do_not_overflow_or_panic() {
        let deep_brackets = format!("$.a{}", "[".repeat(10_000));
        assert!(!hedmatch(&deep_brackets, "{}"));
        let deep_xpath = format!("//a[{}1{}]", "(".repeat(10_000), ")".repeat(10_000));
        assert!(!hedmatch(&deep_xpath, "<a/>"));
        // Just under the length cap: sxd-xpath must handle the longest chain we let through.
        let long_xpath = format!("//a[{}]", vec!["1"; 500].join(" + "));
        assert_eq!(kind(&long_xpath), "xpath");
        assert!(!hedmatch(&long_xpath, "<a/>"));
        let steps = format!("/{}", vec!["a"; 200].join("/"));
        let steps = format!("{steps}[1]");
        assert_eq!(kind(&steps), "xpath");
        let nested_doc = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
        assert!(hedmatch(&steps, &nested_doc));
        // Deeper than MAX_XML_DEPTH: refused at once instead of parsed in quadratic time.
        let deep_doc = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert!(!hedmatch("//a", &deep_doc));
        let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(!hedmatch("$..a", &deep_json));
        let deep_regex = format!("/{}a{}/", "(".repeat(10_000), ")".repeat(10_000));
        assert!(!hedmatch(&deep_regex, "a"));
        let huge_glob = "*a".repeat(5_000);
        assert!(!hedmatch(&huge_glob, &"b".repeat(10_000)));
    }

    #[test]
    fn xml_depth_scan() {
        let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(!xml_nesting_exceeds(&nest(3), 3));
        assert!(xml_nesting_exceeds(&nest(4), 3));
        // Siblings, self-closing tags, comments, CDATA, PIs, doctype and quoted `>` do not nest.
        let flat = r#"<?xml version="1.0"?><!DOCTYPE r><r><!-- <a><b><c> --><x y="<>"/><![CDATA[<a><b><c>]]><?pi <a><b>?><a/><a></a><a></a></r>"#;
        assert!(!xml_nesting_exceeds(flat, 2));
        assert!(xml_nesting_exceeds(flat, 1));
        assert!(xml_nesting_exceeds("<r><a x='>'><b>", 2));
        // Unterminated markup stops the scan (the parser refuses it anyway).
        assert!(!xml_nesting_exceeds("<r><a", 1));
        assert!(hedmatch(
            "//b",
            &format!(
                "{}<b/>{}",
                "<a>".repeat(MAX_XML_DEPTH - 1),
                "</a>".repeat(MAX_XML_DEPTH - 1)
            )
        ));
    }

    #[test]
    fn is_pattern_tells_sets_from_single_paths() {
        for p in ["src/*.js", "known://*", "file?.js", "file[12].js", "a]"] {
            assert!(is_pattern(p), "{p}");
        }
        for p in [
            "src/app.js",
            "known://auth_flow",
            "s/a/b.js",
            "/a/",
            "$.a",
            "//x",
            "",
        ] {
            assert!(!is_pattern(p), "{p}");
        }
    }

    #[test]
    fn compiled_patterns_are_shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Pattern>();
    }

    #[test]
    fn cache_stays_bounded_and_correct() {
        for i in 0..(CACHE_LIMIT * 2 + 7) {
            let pattern = format!("known://k{i}_*");
            assert!(hedmatch(&pattern, &format!("known://k{i}_x")));
        }
        assert!(CACHE.with(|c| c.borrow().len()) <= CACHE_LIMIT);
        assert!(hedmatch("known://k3_*", "known://k3_y"));
    }

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = Text)]
        path: String,
    }

    #[derive(QueryableByName)]
    struct Flags {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        a: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        b: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        c: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        d: i32,
    }

    #[test]
    fn sql_functions_filter_rows_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::super::db::open(&dir.path().join("t.db"), 0).unwrap();
        diesel::sql_query("CREATE TEMP TABLE t (path TEXT NOT NULL, body TEXT)")
            .execute(&mut conn)
            .unwrap();
        let rows = [
            ("src/app.js", Some("const app = 1;")),
            ("src/config.js", Some("const port = 3000;")),
            ("src/utils.js", Some("// TODO: refactor")),
            ("src/lib/deep.js", Some("const deep = 1;")),
            ("readme.md", Some("# Hello")),
            ("known://auth_flow", Some("OAuth2 PKCE")),
            ("known://auth_secret", Some("hunter2")),
            ("known://db/type", None),
        ];
        for (path, body) in rows {
            diesel::sql_query("INSERT INTO t (path, body) VALUES (?, ?)")
                .bind::<Text, _>(path)
                .bind::<Nullable<Text>, _>(body)
                .execute(&mut conn)
                .unwrap();
        }

        let select = |conn: &mut SqliteConnection, pattern: &str, filter: Option<&str>| {
            diesel::sql_query(
                "SELECT path FROM t WHERE hedmatch(?, path) \
                 AND (? IS NULL OR hedsearch(?, body)) ORDER BY path",
            )
            .bind::<Text, _>(pattern)
            .bind::<Nullable<Text>, _>(filter)
            .bind::<Nullable<Text>, _>(filter)
            .load::<Row>(conn)
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect::<Vec<_>>()
        };
        assert_eq!(
            select(&mut conn, "src/*.js", None),
            ["src/app.js", "src/config.js", "src/utils.js"]
        );
        assert_eq!(
            select(&mut conn, "src/*.js", Some("TODO")),
            ["src/utils.js"]
        );
        assert_eq!(
            select(&mut conn, "src/*.js", Some("const")),
            ["src/app.js", "src/config.js"]
        );
        assert_eq!(select(&mut conn, "readme.md", None), ["readme.md"]);
        assert_eq!(
            select(&mut conn, "known://*", None),
            [
                "known://auth_flow",
                "known://auth_secret",
                "known://db/type"
            ]
        );
        // NULL bodies never pass a filter, they do not error.
        assert_eq!(
            select(&mut conn, "known://*", Some("*")),
            ["known://auth_flow", "known://auth_secret"]
        );
        assert_eq!(
            select(&mut conn, "/deep|app/", None),
            ["src/app.js", "src/lib/deep.js"]
        );
        // Repeated tests over many rows with a `g` flag stay stable.
        assert_eq!(select(&mut conn, "/s/g", None).len(), 5);

        let flags = diesel::sql_query(
            "SELECT hedmatch('*', NULL) AS a, hedsearch(NULL, 'x') AS b, \
                    hedmatch('known://*', 'known://a/b') AS c, hedsearch('auth', 'the auth flow') AS d",
        )
        .get_result::<Flags>(&mut conn)
        .unwrap();
        assert_eq!((flags.a, flags.b, flags.c, flags.d), (0, 0, 1, 1));

        // The typed diesel expressions call the same functions.
        let typed: bool = diesel::select(sql::hedmatch("src/**", "src/a/b.js"))
            .get_result(&mut conn)
            .unwrap();
        assert!(typed);
        let typed: bool = diesel::select(sql::hedsearch("*auth*", None::<String>))
            .get_result(&mut conn)
            .unwrap();
        assert!(!typed);
    }

    /// Patterns built from the characters every detector and compiler cares about.
    fn pattern_strategy() -> impl Strategy<Value = String> {
        let prefixes = prop::sample::select(vec![
            "", "s/", "/", "//", "$.", "$[", "$..", "known://", "!", "./",
        ]);
        (
            prefixes,
            r#"[a-c0-9/\\*?.\[\]{}()!@$:'"=<>|^+\- ,_é]{0,24}"#,
            "[gimsuyq]{0,3}",
        )
            .prop_map(|(prefix, body, flags)| format!("{prefix}{body}/{flags}"))
    }

    fn subject_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            r"[a-c/.\\*\[\]{}é\n ]{0,24}",
            r#"[{}\[\]":,a-c0-9 ]{0,24}"#,
            r#"[<>/a-c="' ]{0,32}"#,
            Just(r#"<root><a id="1"><b>x</b></a></root>"#.to_owned()),
            Just(r#"{"a":[{"b":1}],"c":null}"#.to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn arbitrary_patterns_and_subjects_never_panic(
            pattern in prop_oneof![pattern_strategy(), any::<String>()],
            subject in prop_oneof![subject_strategy(), any::<String>()],
        ) {
            let compiled = Pattern::compile(&pattern);
            let _ = compiled.kind();
            let whole = compiled.matches_whole(&subject);
            let within = compiled.matches_within(&subject);
            prop_assert_eq!(hedmatch(&pattern, &subject), whole);
            prop_assert_eq!(hedsearch(&pattern, &subject), within);
            let _ = is_pattern(&pattern);
            // Truncated forms exercise the detectors on every prefix.
            for (i, _) in pattern.char_indices() {
                let _ = hedmatch(&pattern[..i], &subject);
            }
        }

        #[test]
        fn literal_and_glob_patterns_match_themselves(pattern in r"[a-c/.*?\[\]]{0,16}") {
            let compiled = Pattern::compile(&pattern);
            if matches!(compiled.kind(), "literal" | "glob") {
                prop_assert!(compiled.matches_whole(&pattern));
            }
        }
    }
}
