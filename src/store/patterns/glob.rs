//! Glob patterns: picomatch's reading (as upstream configures it) rewritten into globset's
//! dialect.

use globset::{GlobBuilder, GlobMatcher};

/// `(`/`)` literal, the first lone `*` after `://` widened to `**`), on globset with
/// `literal_separator` so `*` and `?` never cross `/`.
///
/// Picomatch rules reproduced on top of globset: in [`hedmatch`](super::hedmatch) an empty subject never
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
    pub(super) prepared: String,
    /// An odd number of leading `!`.
    negated: bool,
    matcher: GlobMatcher,
    /// For `dir/**`: `dir` alone, which picomatch also accepts.
    base: Option<GlobMatcher>,
    /// The last segment is a lone `*`, which picomatch requires to be non-empty.
    nonempty_tail: bool,
}

impl CompiledGlob {
    /// Picomatch's regex test (without the equality shortcut, which only `hedmatch` applies).
    pub(super) fn is_match(&self, subject: &str) -> bool {
        let matched = (self.matcher.is_match(subject)
            || self.base.as_ref().is_some_and(|b| b.is_match(subject)))
            && (!self.nonempty_tail || !(subject.is_empty() || subject.ends_with('/')));
        matched != self.negated
    }
}

/// Prepares the pattern as upstream does before handing it to picomatch, then rewrites it into
/// globset's dialect.
pub(super) fn compile_glob(pattern: &str) -> Option<CompiledGlob> {
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
    use crate::store::patterns::tests::check;

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
}
