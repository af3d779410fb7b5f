//! Any reply, any command cap: the parser never panics, every command it
//! keeps respects the cap, and its JSON rendering never fails.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cap, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let max = usize::from(cap % 8) + 1;
    let parsed = rummy::parse::parse(&text, max);
    assert!(parsed.commands.len() <= max);
    for cmd in &parsed.commands {
        let _ = cmd.to_json();
        let _ = (cmd.target(), cmd.text(), cmd.status(), cmd.path());
    }
    let _ = parsed.to_json().to_string();
});
