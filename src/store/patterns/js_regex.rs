//! `/body/flags` and flagged sed searches: JavaScript regex syntax and flags on the `regex`
//! crate, tested statelessly.

use regex::{Regex, RegexBuilder};

/// A JavaScript-style regex (body plus flags) compiled for stateless yes/no tests.
#[derive(Debug)]
pub struct JsRegex {
    regex: Regex,
    /// The `y` flag: every test starts at index 0, so a sticky regex must match there.
    sticky: bool,
}

impl JsRegex {
    /// The body is read as JavaScript syntax (see [`js_regex_syntax`]). Flags: `i`
    /// case-insensitive, `m` multi-line, `s` dot matches newline, `y` sticky; `g`, `u`, `v`, `d`
    /// change nothing for a yes/no test. Unknown or repeated flags, or `u` with `v`, are errors
    /// in JavaScript, so they compile to `None` here, as does a body the `regex` crate rejects
    /// (look-around and backreferences, which it does not support, included).
    pub(super) fn compile(body: &str, flags: &str) -> Option<JsRegex> {
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
    pub(super) fn test(&self, subject: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use crate::store::patterns::tests::check;
    use crate::store::patterns::{hedmatch, hedsearch, Pattern};

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
}
