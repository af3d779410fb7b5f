//! Foreign tool-call formats rewritten into our XML (spec 02 §5.1 step 1).
//!
//! Models fall back on the tool-call syntax they were trained on. Where the
//! intent is clear the call is translated silently, as upstream does; a
//! call that cannot be translated is removed and explained in a warning.
//! Upstream instead splices an `<error>` text into the reply, one of which
//! quotes `<NAME>value</NAME>` and so comes back as a phantom command.

use super::markers::{Marker, Markers};
use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid constant regex {pattern}: {e}"))
}

/// Fenced blocks labelled as tool code: the fence goes, the content stays.
static FENCE: LazyLock<Regex> =
    LazyLock::new(|| re(r"```(?:tool_code|tool_command|xml)\n((?s:.)*?)```"));
/// `<|tool_call>call:NAME{params}<tool_call|>` (Gemma/Qwen chat templates).
static NATIVE_CALL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"<\|tool_call>call:([A-Za-z0-9_.:/-]+)\{([^}]*)\}<(?:tool_call\||\|tool_call)>")
});
static TRAILING_WORD: LazyLock<Regex> = LazyLock::new(|| re(r"[A-Za-z0-9_]+$"));
static NATIVE_VALUE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"[=:]\s*(?:<\|"\|>([^<]*?)<\|"\|>|"([^"]*)"|'([^']*)'|([^,}]+))"#));
/// `{"name":"N","arguments":{…}}` (OpenAI function calls).
static OPENAI: LazyLock<Regex> = LazyLock::new(|| {
    re(r#"\{"name"\s*:\s*"([A-Za-z0-9_]+)"\s*,\s*"arguments"\s*:\s*\{([^}]*)\}\}"#)
});
/// `<tool_use><name>N</name><input>{…}</input></tool_use>` (Anthropic).
static ANTHROPIC: LazyLock<Regex> = LazyLock::new(|| {
    re(r"<tool_use>\s*<name>([A-Za-z0-9_]+)</name>\s*<input>\{([^}]*)\}</input>\s*</tool_use>")
});
/// `[TOOL_CALLS] [{"name":…,"arguments":{…}}]` (Mistral).
static MISTRAL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"\[TOOL_CALLS\]\s*\[\{"name"\s*:\s*"([A-Za-z0-9_]+)"\s*,\s*"arguments"\s*:\s*\{([^}]*)\}\}\]"#,
    )
});
static JSON_PAIR: LazyLock<Regex> = LazyLock::new(|| re(r#""([A-Za-z0-9_]+)"\s*:\s*"([^"]*)""#));
/// Whatever is left of a native call: to its closing token, the next
/// closing tag, or the end.
static NATIVE_LEFTOVER: LazyLock<Regex> =
    LazyLock::new(|| re(r"<\|tool_call>(?s:.)*?(?:<\|?tool_call\|?>|</[A-Za-z0-9_]+>|$)"));
static CHAT_QUOTE: LazyLock<Regex> = LazyLock::new(|| re(r#"<\|"\|>"#));
static CHANNEL_OPEN: LazyLock<Regex> = LazyLock::new(|| re(r"<\|[A-Za-z0-9_:/-]+>"));
static CHANNEL_CLOSE: LazyLock<Regex> = LazyLock::new(|| re(r"<[A-Za-z0-9_:/-]+\|>"));

/// Rewrites every foreign call it recognises; returns the new text and
/// its markers. `markers` are those of `content`; they are scanned again
/// after a pass that changed the text, since a rewrite can create one (a
/// translated call brings a closing tag).
pub(crate) fn normalize<'s>(
    content: &'s str,
    markers: Markers,
    is_tool: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> (Cow<'s, str>, Markers) {
    let mut text: Cow<'s, str> = Cow::Borrowed(content);
    let mut m = markers;
    // Applies a pass's result, rescanning only when it changed something.
    fn apply<'s>(text: &mut Cow<'s, str>, m: &mut Markers, pass: Cow<'_, str>) {
        if let Cow::Owned(changed) = pass {
            *m = Markers::scan(&changed);
            *text = Cow::Owned(changed);
        }
    }
    if m.has(Marker::Fence) {
        let pass = FENCE.replace_all(&text, |c: &Captures| {
            crate::hedberg::js_trim(&c[1]).to_string()
        });
        let pass = own(pass);
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::NativeCall) {
        let pass =
            own(NATIVE_CALL.replace_all(&text, |c: &Captures| native_call(c, is_tool, warnings)));
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::OpenAiArguments) {
        let pass = own(OPENAI.replace_all(&text, |c: &Captures| json_call(c, is_tool)));
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::ToolUse) {
        let pass = own(ANTHROPIC.replace_all(&text, |c: &Captures| json_call(c, is_tool)));
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::MistralCalls) {
        let pass = own(MISTRAL.replace_all(&text, |c: &Captures| json_call(c, is_tool)));
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::NativeCall) {
        let pass = own(NATIVE_LEFTOVER.replace_all(&text, |_: &Captures| {
            warnings.push(
                "Native tool call format not supported. Use the XML commands listed above \
                 (for example a get tag with a path attribute, or a set tag with a path and a body)."
                    .to_string(),
            );
            String::new()
        }));
        apply(&mut text, &mut m, pass);
    }
    // Every chat-template token starts `<|` or ends `|>`; a shell pipe
    // alone does not need these passes.
    if m.has(Marker::ChatOpen) {
        let pass = own(CHAT_QUOTE.replace_all(&text, "\""));
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::ChatOpen) {
        let pass = own(CHANNEL_OPEN.replace_all(&text, ""));
        apply(&mut text, &mut m, pass);
    }
    if m.has(Marker::ChatClose) {
        let pass = own(CHANNEL_CLOSE.replace_all(&text, ""));
        apply(&mut text, &mut m, pass);
    }
    (text, m)
}

/// Detaches a pass's result from the text it read; a pass that changed
/// nothing stays `Borrowed` (and so is dropped by `apply`).
fn own<'s>(pass: Cow<'_, str>) -> Cow<'s, str> {
    match pass {
        Cow::Borrowed(_) => Cow::Borrowed(""),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

fn native_call(c: &Captures, is_tool: &dyn Fn(&str) -> bool, warnings: &mut Vec<String>) -> String {
    let qualified = &c[1];
    // `rummy.nvim/get`, `rummy:get`: the tool is the trailing word.
    let name = TRAILING_WORD
        .find(qualified)
        .map_or(qualified, |m| m.as_str());
    if !is_tool(name) {
        warnings.push(format!(
            "Unknown command '{qualified}' in a native tool-call format. Use the XML commands listed above."
        ));
        return String::new();
    }
    let value = NATIVE_VALUE
        .captures(&c[2])
        .and_then(|v| (1..=4).find_map(|i| v.get(i)))
        .map(|m| crate::hedberg::js_trim(m.as_str()).to_string())
        .unwrap_or_default();
    if value.is_empty() {
        warnings.push(format!(
            "Could not extract an argument from the native tool call to '{name}'. \
             Use the XML command instead, with the value as the tag's text."
        ));
        return String::new();
    }
    format!("<{name}>{value}</{name}>")
}

/// OpenAI, Anthropic and Mistral calls: the first string argument becomes
/// the tag text; calls to names that are not tools stay as written.
fn json_call(c: &Captures, is_tool: &dyn Fn(&str) -> bool) -> String {
    let name = &c[1];
    if !is_tool(name) {
        return c[0].to_string();
    }
    let value = JSON_PAIR
        .captures(&c[2])
        .map(|p| p[2].to_string())
        .unwrap_or_default();
    format!("<{name}>{value}</{name}>")
}
