//! Load driver for streamed command output, end to end: a real server on
//! a temp database, the fake OpenAI-compatible provider of the integration
//! tests, and a real WebSocket client. The model proposes `<sh>`, a client
//! accepts it and sends N chunks of 4 KiB with `stream`, each call awaited,
//! then `stream/completed`. Prints MB/s overall and for the first and last
//! tenth of the chunks (flat means linear ingest; upstream 2.0.0 fell from
//! 0.99 to 0.06 MB/s, 0.11 MB/s overall, on the same load).
//!
//! Run: `cargo bench --bench stream_load` (release build). Settings:
//! `STREAM_LOAD_CHUNKS` (2000), `STREAM_LOAD_READ_EVERY` (0 = never: with
//! N > 0 a second client reads the channel with getEntries every N chunks).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{hello_client, start_server, Reply};
use serde_json::json;
use std::time::{Duration, Instant};

const CHUNK: usize = 4096;
const LOG: &str = "log://turn_1/sh/yes";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mbps(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64().max(1e-9)
}

#[actix_web::main]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument is not ours.
    let chunks = setting("STREAM_LOAD_CHUNKS", 2000).max(10);
    let read_every = setting("STREAM_LOAD_READ_EVERY", 0);
    let long = Duration::from_secs(60);
    let t = start_server(vec![Reply::Content(
        r#"<sh>yes</sh><update status="200">streaming</update>"#.into(),
    )])
    .await;
    let root = tempfile::tempdir().expect("root");
    let root_str = root.path().to_string_lossy().into_owned();
    let addr = t.server.local_addr.expect("listening");
    let mut a = hello_client(addr, "load", &root_str).await;
    let mut reader = hello_client(addr, "load", &root_str).await;
    let started = a
        .call(
            "set",
            json!({"path": "run://", "body": "stream", "attributes": {"model": "fake", "mode": "act"}}),
        )
        .await
        .expect("run starts");
    let alias = started["alias"].as_str().expect("alias").to_string();
    a.wait_notification("run/proposal", long, |n| {
        n["params"]["run"] == alias.as_str()
    })
    .await;
    a.call(
        "set",
        json!({"run": alias, "path": LOG, "state": "resolved"}),
    )
    .await
    .expect("accepted");

    let chunk = "y\n".repeat(CHUNK / 2);
    let tenth = chunks / 10;
    let mut marks = Vec::with_capacity(11);
    let begin = Instant::now();
    marks.push(begin);
    for i in 0..chunks {
        a.call(
            "stream",
            json!({"run": alias, "path": LOG, "channel": 1, "chunk": chunk}),
        )
        .await
        .expect("chunk");
        if read_every > 0 && (i + 1) % read_every == 0 {
            reader
                .call(
                    "getEntries",
                    json!({"run": alias, "pattern": "sh://**", "withBody": true}),
                )
                .await
                .expect("read");
        }
        if (i + 1) % tenth == 0 {
            marks.push(Instant::now());
        }
    }
    let done = a
        .call(
            "stream/completed",
            json!({"run": alias, "path": LOG, "exit_code": 0}),
        )
        .await
        .expect("completed");
    let total = begin.elapsed();
    assert_eq!(done["channels"], 2);
    // Sizes, not bodies: a large body would pass the client's frame limit.
    let rows = reader
        .call("getEntries", json!({"run": alias, "pattern": "sh://**"}))
        .await
        .expect("entries");
    let tokens = rows[0]["tokens"].as_u64().unwrap_or_default() as usize;
    assert_eq!(
        tokens,
        chunks * CHUNK / 2,
        "every byte arrived (2 characters a token)"
    );

    let bytes = chunks * CHUNK;
    let per_tenth: Vec<f64> = marks
        .windows(2)
        .map(|w| mbps(tenth * CHUNK, w[1] - w[0]))
        .collect();
    println!(
        "stream_load: {chunks} × {} KiB chunks, each `stream` awaited{}",
        CHUNK / 1024,
        if read_every > 0 {
            format!(", getEntries every {read_every} chunks")
        } else {
            String::new()
        }
    );
    println!(
        "  overall {:.2} MB/s ({:.2} s); first tenth {:.2} MB/s, last tenth {:.2} MB/s",
        mbps(bytes, total),
        total.as_secs_f64(),
        per_tenth.first().copied().unwrap_or_default(),
        per_tenth.last().copied().unwrap_or_default(),
    );
    println!(
        "  per tenth (MB/s): {}",
        per_tenth
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    t.server.stop().await;
}
