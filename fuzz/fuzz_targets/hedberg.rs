//! Any body and any edit text: detection and application never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rummy::hedberg::{self, EditAttrs};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first NUL splits the current body from the edit the model wrote;
    // a second one, when present, gives a `search=` attribute.
    let mut parts = text.splitn(3, '\0');
    let body = parts.next().unwrap_or_default();
    let edit_text = parts.next().unwrap_or_default();
    let search = parts.next();
    let attrs = EditAttrs {
        search,
        replace: None,
        body: None,
    };
    let detected = hedberg::detect(edit_text, attrs);
    let edit = detected.into_edit(edit_text);
    let _ = hedberg::apply(body, &edit);
    if let Some(blocks) = hedberg::parse_sed(edit_text) {
        for b in blocks {
            let _ = hedberg::replace(body, &b.search, &b.replace);
        }
    }
});
