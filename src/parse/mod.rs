//! Turning one raw model reply into tool commands plus warnings.
//!
//! This is the first, strict-ish parser on quick-xml: tool tags anywhere in
//! prose, raw (opaque) bodies, unknown tags treated as prose. It never
//! panics and reports every recovery as a warning. The tolerant pipeline
//! (foreign formats, quote repair, mismatched closes) replaces it.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

/// Tags the model may use as tools.
pub const TOOL_TAGS: [&str; 11] = [
    "get", "rm", "set", "mv", "cp", "search", "sh", "env", "ask_user", "update", "think",
];

/// One tool call as the model wrote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    pub name: String,
    /// Attributes in the order written; a bare attribute has value "".
    pub attrs: Vec<(String, String)>,
    /// The raw text between the tags (empty for a self-closing tag).
    pub body: String,
}

impl Command {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn non_empty_attr(&self, key: &str) -> Option<&str> {
        self.attr(key).filter(|v| !v.is_empty())
    }

    /// The trimmed body, or the `body` attribute when the tag is empty.
    pub fn text(&self) -> String {
        let t = self.body.trim();
        if !t.is_empty() {
            return t.to_string();
        }
        self.attr("body").unwrap_or_default().to_string()
    }

    /// The entry path a command addresses: `path` attribute, or for tools
    /// whose body is the path (get, rm, search) the trimmed body.
    pub fn path(&self) -> Option<String> {
        if let Some(p) = self.non_empty_attr("path") {
            return Some(p.to_string());
        }
        match self.name.as_str() {
            "get" | "rm" | "search" => Some(self.body.trim().to_string()).filter(|p| !p.is_empty()),
            _ => None,
        }
    }

    /// What the log path names: path, else command, else question.
    pub fn target(&self) -> String {
        if self.name == "update" {
            return self.text();
        }
        if let Some(p) = self.path() {
            return p;
        }
        if let Some(c) = self.non_empty_attr("command") {
            return c.to_string();
        }
        if matches!(self.name.as_str(), "sh" | "env") {
            return self.body.trim().to_string();
        }
        self.non_empty_attr("question")
            .unwrap_or_default()
            .to_string()
    }

    /// `<update status="N">`: the number, 102 when absent, None when not a number.
    pub fn status(&self) -> Option<i64> {
        match self.attr("status") {
            None | Some("") => Some(102),
            Some(s) => s.trim().parse().ok(),
        }
    }
}

/// The parser's whole output for one reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Parsed {
    pub commands: Vec<Command>,
    pub warnings: Vec<String>,
    /// Text outside tool tags, trimmed.
    pub unparsed: String,
}

/// Parses one reply, keeping at most `max_commands` commands.
pub fn parse(content: &str, max_commands: usize) -> Parsed {
    let mut out = Parsed::default();
    let mut prose = String::new();
    let mut reader = Reader::from_str(content);
    {
        let config = reader.config_mut();
        config.check_end_names = false;
        config.trim_text(false);
        config.allow_unmatched_ends = true;
    }
    loop {
        let position = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                out.warnings.push(format!("Parse error: {e}"));
                prose.push_str(content.get(position..).unwrap_or_default());
                break;
            }
        };
        match event {
            Event::Eof => break,
            Event::Start(start) if is_tool(&start) => {
                if out.commands.len() >= max_commands {
                    out.warnings.push(cap_warning(max_commands));
                    break;
                }
                let name = tag_name(&start);
                let attrs = attributes(&start);
                let body_start = reader.buffer_position() as usize;
                match reader.read_text(start.name()) {
                    Ok(body) => out.commands.push(Command {
                        name,
                        attrs,
                        body: body.into_owned(),
                    }),
                    Err(_) => {
                        out.warnings
                            .push(format!("Unclosed <{name}> tag — content captured anyway"));
                        out.commands.push(Command {
                            name,
                            attrs,
                            body: content.get(body_start..).unwrap_or_default().to_string(),
                        });
                        break;
                    }
                }
            }
            Event::Empty(start) if is_tool(&start) => {
                if out.commands.len() >= max_commands {
                    out.warnings.push(cap_warning(max_commands));
                    break;
                }
                out.commands.push(Command {
                    name: tag_name(&start),
                    attrs: attributes(&start),
                    body: String::new(),
                });
            }
            Event::Text(t) => match t.unescape() {
                Ok(s) => prose.push_str(&s),
                Err(_) => prose.push_str(&String::from_utf8_lossy(&t)),
            },
            Event::CData(t) => prose.push_str(&String::from_utf8_lossy(&t)),
            _ => {}
        }
    }
    out.unparsed = prose.trim().to_string();
    out
}

fn cap_warning(max: usize) -> String {
    format!("Tool call limit ({max}) reached — remaining commands dropped")
}

fn tag_name(start: &BytesStart) -> String {
    String::from_utf8_lossy(start.name().as_ref()).to_ascii_lowercase()
}

fn is_tool(start: &BytesStart) -> bool {
    TOOL_TAGS.contains(&tag_name(start).as_str())
}

fn attributes(start: &BytesStart) -> Vec<(String, String)> {
    start
        .html_attributes()
        .filter_map(Result::ok)
        .map(|a| {
            let key = String::from_utf8_lossy(a.key.as_ref()).to_ascii_lowercase();
            let value = match a.unescape_value() {
                Ok(v) => v.into_owned(),
                Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
            };
            (key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_and_update() {
        let p = parse(
            r#"<set path="known://answer">42</set><update status="102">noted</update>"#,
            99,
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.commands.len(), 2);
        assert_eq!(p.commands[0].name, "set");
        assert_eq!(p.commands[0].path().as_deref(), Some("known://answer"));
        assert_eq!(p.commands[0].text(), "42");
        assert_eq!(p.commands[1].status(), Some(102));
        assert_eq!(p.commands[1].text(), "noted");
    }

    #[test]
    fn prose_and_unknown_tags_are_unparsed() {
        let p = parse("Thinking <b>hard</b> now. <get>src/app.js</get> done", 99);
        assert_eq!(p.commands.len(), 1);
        assert_eq!(p.commands[0].path().as_deref(), Some("src/app.js"));
        assert_eq!(p.unparsed, "Thinking hard now.  done");
    }

    #[test]
    fn bodies_are_opaque() {
        let p = parse(r#"<set path="known://x">a <b>bold</b> claim</set>"#, 99);
        assert_eq!(p.commands[0].body, "a <b>bold</b> claim");
    }

    #[test]
    fn self_closing_and_bare_attributes() {
        let p = parse(r#"<get path="known://*" preview/>"#, 99);
        assert_eq!(p.commands[0].attr("preview"), Some(""));
        assert_eq!(p.commands[0].path().as_deref(), Some("known://*"));
    }

    #[test]
    fn unclosed_tool_is_recovered_with_a_warning() {
        let p = parse(r#"<update status="200">all done"#, 99);
        assert_eq!(p.commands.len(), 1);
        assert_eq!(p.commands[0].body, "all done");
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn command_cap() {
        let p = parse("<get>a</get><get>b</get><get>c</get>", 2);
        assert_eq!(p.commands.len(), 2);
        assert_eq!(
            p.warnings,
            vec!["Tool call limit (2) reached — remaining commands dropped"]
        );
    }

    #[test]
    fn statuses() {
        let p = parse(r#"<update status="abc">x</update><update>y</update>"#, 9);
        assert_eq!(p.commands[0].status(), None);
        assert_eq!(p.commands[1].status(), Some(102));
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            "<",
            "</set>",
            "<set",
            "<<<>>>",
            "&bogus;",
            "<get path=\"x>",
            "\u{0}",
        ] {
            let _ = parse(input, 99);
        }
    }
}
