//! The tag lexer: HTML tokenizing rules, as the htmlparser2 tokenizer
//! upstream 2.0.0 parses model replies with.
//!
//! Why not quick-xml's reader: it is an XML reader. It takes `<` followed by
//! anything as markup (`x < 3` becomes a tag), reports an unterminated tag
//! as an error instead of dropping it, and knows nothing of HTML's raw-text
//! elements; every one of those changes which tool calls a reply contains.
//! This lexer works on byte offsets (every delimiter is ASCII), so tool
//! bodies can be cut out of the reply verbatim. Entity decoding
//! (`entities.rs`) uses quick-xml's HTML5 table.

use super::entities::{decode, Mode};
use super::markers::find_byte;
use std::borrow::Cow;

/// One lexical item. Offsets are byte offsets into the lexed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Character data; `decode` says whether references in it are live.
    Text {
        start: usize,
        end: usize,
        decode: bool,
    },
    /// `<name attrs>` or `<name attrs/>`. Names are lowercased, attribute
    /// values decoded; a repeated attribute keeps its first value. Names
    /// and values borrow from the text unless lowercasing or decoding
    /// changed them.
    Open {
        name: Cow<'a, str>,
        attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        self_closing: bool,
        start: usize,
        end: usize,
    },
    /// `</name…>`; `start` is the offset of `<`.
    Close { name: Cow<'a, str>, start: usize },
    /// An open tag cut off by the end of input after its name: an HTML
    /// parser has already put the element on its stack (and closes it at
    /// the end) but never reports the tag itself.
    OpenCut { name: Cow<'a, str> },
}

/// Elements whose content is raw text up to their own closing tag: the
/// name, and whether references in it decode (title and textarea are
/// escapable raw text).
fn raw_text(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "script" => ("script", false),
        "style" => ("style", false),
        "title" => ("title", true),
        "textarea" => ("textarea", true),
        "xmp" => ("xmp", false),
        "iframe" => ("iframe", false),
        "noembed" => ("noembed", false),
        "noframes" => ("noframes", false),
        _ => return None,
    })
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    /// Inside a raw-text element: its name, and whether references decode
    /// (title and textarea are escapable raw text).
    raw_text: Option<(&'static str, bool)>,
    plaintext: bool,
    /// A close tag cut off before its `>` leaves its last character as text.
    pending_last_char: bool,
    /// Where markup cut off by the end of input started (it is dropped).
    dropped_from: Option<usize>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\x0C' | b'\r')
}

fn ends_section(b: u8) -> bool {
    b == b'/' || b == b'>' || is_space(b)
}

/// `s` lowercased, borrowed when it already is (the usual case).
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|c| c.is_ascii() && !c.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            b: src.as_bytes(),
            pos: 0,
            raw_text: None,
            plaintext: false,
            pending_last_char: false,
            dropped_from: None,
        }
    }

    /// Where the consumed input ends: the end of the text, or the start of
    /// an unterminated tag, comment or declaration the end cut off.
    pub(crate) fn consumed_end(&self) -> usize {
        self.dropped_from.unwrap_or(self.b.len())
    }

    fn find_from(&self, from: usize, byte: u8) -> Option<usize> {
        find_byte(byte, self.b.get(from..)?).map(|i| i + from)
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    /// The next token. `foreign` is whether the parser is inside `<svg>` or
    /// `<math>`, where raw-text elements do not exist.
    pub(crate) fn next_token(&mut self, foreign: bool) -> Option<Token<'a>> {
        let len = self.b.len();
        if self.pending_last_char {
            self.pending_last_char = false;
            return Some(self.last_char());
        }
        while self.pos < len {
            let p = self.pos;
            if self.plaintext {
                self.pos = len;
                return Some(text(p, len, false));
            }
            if let Some((name, decodes)) = self.raw_text {
                self.raw_text = None;
                let end = self.find_raw_text_end(p, name).unwrap_or(len);
                self.pos = end;
                if end > p {
                    return Some(text(p, end, decodes));
                }
                continue;
            }
            let q = match self.find_markup(p) {
                Some(q) => q,
                None => {
                    self.pos = len;
                    return Some(text(p, len, true));
                }
            };
            if q > p {
                self.pos = q;
                return Some(text(p, q, true));
            }
            if let Some(token) = self.markup(q, foreign) {
                return Some(token);
            }
        }
        None
    }

    /// The next `<` that can begin markup (`<!`, `<?`, `</`, `<` + letter).
    fn find_markup(&self, mut from: usize) -> Option<usize> {
        loop {
            let q = self.find_from(from, b'<')?;
            match self.at(q + 1) {
                Some(b'!' | b'?' | b'/') => return Some(q),
                Some(c) if c.is_ascii_alphabetic() => return Some(q),
                _ => from = q + 1,
            }
        }
    }

    /// Lexes the markup at `q`; None when it produced no token (comments,
    /// declarations, `</>`), with `pos` moved past it.
    fn markup(&mut self, q: usize, foreign: bool) -> Option<Token<'a>> {
        match self.at(q + 1) {
            Some(b'!') => {
                self.skip_declaration(q);
                None
            }
            Some(b'?') => {
                self.skip_to_gt(q, q + 2);
                None
            }
            Some(b'/') => self.close_tag(q),
            _ => self.open_tag(q, foreign),
        }
    }

    fn last_char(&self) -> Token<'a> {
        let len = self.b.len();
        let start = self.src[..len]
            .char_indices()
            .next_back()
            .map(|(i, _)| i)
            .unwrap_or(len);
        text(start, len, true)
    }

    /// Skips through the next `>` at or after `from`; to the end (dropped)
    /// when there is none.
    fn skip_to_gt(&mut self, q: usize, from: usize) {
        match self.find_from(from, b'>') {
            Some(gt) => self.pos = gt + 1,
            None => {
                self.dropped_from = Some(q);
                self.pos = self.b.len();
            }
        }
    }

    fn skip_declaration(&mut self, q: usize) {
        let rest = &self.b[q..];
        if rest.starts_with(b"<!--") {
            let start = q + 4;
            let end = match self.at(start) {
                Some(b'>') => Some(start + 1),
                Some(b'-') if self.at(start + 1) == Some(b'>') => Some(start + 2),
                _ => (start..self.b.len()).find_map(|k| {
                    let tail = &self.b[k..];
                    if tail.starts_with(b"-->") {
                        Some(k + 3)
                    } else if tail.starts_with(b"--!>") {
                        Some(k + 4)
                    } else {
                        None
                    }
                }),
            };
            match end {
                Some(e) => self.pos = e,
                None => {
                    self.dropped_from = Some(q);
                    self.pos = self.b.len();
                }
            }
        } else if rest.starts_with(b"<![CDATA[") {
            let from = q + 9;
            let end = (from..self.b.len()).find(|&k| self.b[k..].starts_with(b"]]>"));
            match end {
                Some(e) => self.pos = e + 3,
                None => {
                    self.dropped_from = Some(q);
                    self.pos = self.b.len();
                }
            }
        } else {
            self.skip_to_gt(q, q + 2);
        }
    }

    fn close_tag(&mut self, q: usize) -> Option<Token<'a>> {
        let len = self.b.len();
        let first = q + 2;
        match self.at(first) {
            None => {
                self.pos = len;
                Some(text(q, len, true))
            }
            Some(b'>') => {
                self.pos = first + 1;
                None
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name_end = (first..len).find(|&i| ends_section(self.b[i]));
                let Some(name_end) = name_end else {
                    self.dropped_from = Some(q);
                    self.pos = len;
                    return None;
                };
                let src: &'a str = self.src;
                let name = lowercase(&src[first..name_end]);
                match self.find_from(name_end, b'>') {
                    Some(gt) => self.pos = gt + 1,
                    None => {
                        // The close counts; htmlparser2's end-of-input slice
                        // then yields the last character as text.
                        self.pos = len;
                        if name_end < len {
                            self.pending_last_char = true;
                        }
                    }
                }
                Some(Token::Close { name, start: q })
            }
            Some(_) => {
                self.skip_to_gt(q, first);
                None
            }
        }
    }
}

impl<'a> Lexer<'a> {
    /// Where a raw-text element ends: its `</name` followed by whitespace,
    /// `/` or `>` (names compared ignoring ASCII case).
    fn find_raw_text_end(&self, from: usize, name: &str) -> Option<usize> {
        let mut at = from;
        while let Some(q) = self.find_from(at, b'<') {
            let n = name.len();
            let matches = self.at(q + 1) == Some(b'/')
                && self
                    .b
                    .get(q + 2..q + 2 + n)
                    .is_some_and(|t| t.eq_ignore_ascii_case(name.as_bytes()))
                && self.at(q + 2 + n).is_some_and(ends_section);
            if matches {
                return Some(q);
            }
            at = q + 1;
        }
        None
    }

    /// `<name attr=value …>` at `q`, following the HTML attribute rules
    /// (unquoted values run to whitespace or `>`, so `path=a/b/>` is not
    /// self-closing). None when the input ends inside the tag.
    fn open_tag(&mut self, q: usize, foreign: bool) -> Option<Token<'a>> {
        let len = self.b.len();
        let src: &'a str = self.src;
        let name_start = q + 1;
        let Some(name_end) = (name_start..len).find(|&i| ends_section(self.b[i])) else {
            self.dropped_from = Some(q);
            self.pos = len;
            return None;
        };
        let mut name = lowercase(&src[name_start..name_end]);
        if name == "image" && !foreign {
            name = Cow::Borrowed("img");
        }
        let mut attrs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        let mut push = |key: &'a str, value: Cow<'a, str>| {
            let key = lowercase(key);
            if !attrs.iter().any(|(k, _)| *k == key) {
                attrs.push((key, value));
            }
        };
        let mut i = name_end;
        let mut slash = false;
        loop {
            let Some(c) = self.at(i) else {
                if slash {
                    // `<a /` at the end: see `markup`.
                    self.pending_last_char = true;
                } else {
                    self.dropped_from = Some(q);
                }
                self.pos = len;
                return Some(Token::OpenCut { name });
            };
            if slash {
                match c {
                    b'>' => {
                        self.pos = i + 1;
                        return Some(Token::Open {
                            name,
                            attrs,
                            self_closing: true,
                            start: q,
                            end: i + 1,
                        });
                    }
                    c if is_space(c) => {
                        i += 1;
                        continue;
                    }
                    _ => slash = false,
                }
            }
            match c {
                b'>' => {
                    self.pos = i + 1;
                    self.enter_content(&name, foreign);
                    return Some(Token::Open {
                        name,
                        attrs,
                        self_closing: false,
                        start: q,
                        end: i + 1,
                    });
                }
                b'/' => {
                    slash = true;
                    i += 1;
                }
                c if is_space(c) => i += 1,
                _ => {
                    // An attribute name runs to `=`, whitespace, `/` or `>`.
                    let key_start = i;
                    let key_end = (i + 1..len)
                        .find(|&k| self.b[k] == b'=' || ends_section(self.b[k]))
                        .unwrap_or(len);
                    let key = &src[key_start..key_end];
                    let mut k = key_end;
                    while self.at(k).is_some_and(is_space) {
                        k += 1;
                    }
                    if self.at(k) != Some(b'=') {
                        if k >= len {
                            self.dropped_from = Some(q);
                            self.pos = len;
                            return Some(Token::OpenCut { name });
                        }
                        push(key, Cow::Borrowed(""));
                        i = k;
                        continue;
                    }
                    k += 1;
                    while self.at(k).is_some_and(is_space) {
                        k += 1;
                    }
                    let (value, next) = match self.at(k) {
                        Some(quote @ (b'"' | b'\'')) => match self.find_from(k + 1, quote) {
                            Some(close) => (&src[k + 1..close], close + 1),
                            None => {
                                self.dropped_from = Some(q);
                                self.pos = len;
                                return Some(Token::OpenCut { name });
                            }
                        },
                        Some(_) => {
                            let end = (k..len)
                                .find(|&e| self.b[e] == b'>' || is_space(self.b[e]))
                                .unwrap_or(len);
                            if end >= len {
                                self.dropped_from = Some(q);
                                self.pos = len;
                                return Some(Token::OpenCut { name });
                            }
                            (&src[k..end], end)
                        }
                        None => {
                            self.dropped_from = Some(q);
                            self.pos = len;
                            return Some(Token::OpenCut { name });
                        }
                    };
                    push(key, decode(value, Mode::Attribute));
                    i = next;
                }
            }
        }
    }

    /// After an open tag that is not self-closing: raw-text elements switch
    /// the lexer until their closing tag (not inside svg/math).
    fn enter_content(&mut self, name: &str, foreign: bool) {
        if foreign {
            return;
        }
        if name == "plaintext" {
            self.plaintext = true;
        } else if let Some(raw) = raw_text(name) {
            self.raw_text = Some(raw);
        }
    }
}

fn text(start: usize, end: usize, decode: bool) -> Token<'static> {
    Token::Text { start, end, decode }
}
