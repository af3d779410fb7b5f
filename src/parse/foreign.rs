//! Foreign tool-call formats rewritten into our XML (spec 02 §5.1 step 1).
//!
//! Models fall back on the tool-call syntax they were trained on. Where the
//! intent is clear the call is translated silently, as upstream does; a
//! call that cannot be translated is removed and explained in a warning.
//! Upstream instead splices an `<error>` text into the reply, one of which
//! quotes `<NAME>value</NAME>` and so comes back as a phantom command.

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

/// Rewrites every foreign call it recognises; returns the new text.
pub(crate) fn normalize<'s>(
    content: &'s str,
    is_tool: &dyn Fn(&str) -> bool,
    warnings: &mut Vec<String>,
) -> Cow<'s, str> {
    // Cheap exits: almost every reply holds none of these markers.
    let mut text: Cow<'s, str> = Cow::Borrowed(content);
    if text.contains("```") {
        text = own(FENCE.replace_all(&text, |c: &Captures| {
            crate::hedberg::js_trim(&c[1]).to_string()
        }));
    }
    if text.contains("<|tool_call>") {
        text =
            own(NATIVE_CALL.replace_all(&text, |c: &Captures| native_call(c, is_tool, warnings)));
    }
    if text.contains("\"arguments\"") {
        text = own(OPENAI.replace_all(&text, |c: &Captures| json_call(c, is_tool)));
    }
    if text.contains("<tool_use>") {
        text = own(ANTHROPIC.replace_all(&text, |c: &Captures| json_call(c, is_tool)));
    }
    if text.contains("[TOOL_CALLS]") {
        text = own(MISTRAL.replace_all(&text, |c: &Captures| json_call(c, is_tool)));
    }
    if text.contains("<|tool_call>") {
        text = own(NATIVE_LEFTOVER.replace_all(&text, |_: &Captures| {
            warnings.push(
                "Native tool call format not supported. Use the XML commands listed above \
                 (for example a get tag with a path attribute, or a set tag with a path and a body)."
                    .to_string(),
            );
            String::new()
        }));
    }
    if text.contains('|') {
        text = own(CHAT_QUOTE.replace_all(&text, "\""));
        text = own(CHANNEL_OPEN.replace_all(&text, ""));
        text = own(CHANNEL_CLOSE.replace_all(&text, ""));
    }
    text
}

/// Keeps the borrow when a pass changed nothing.
fn own<'s>(pass: Cow<'_, str>) -> Cow<'s, str> {
    Cow::Owned(pass.into_owned())
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
