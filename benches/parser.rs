//! Parser throughput on a mixed corpus of model replies, and on a corpus
//! of short replies (182 replies of about 62 bytes, the kind models send
//! between tool calls), where the parser's fixed cost per reply dominates.
//!
//! `cargo bench --bench parser`; criterion reports bytes per second for
//! the whole corpus parsed once per iteration (and resolved to JSON in the
//! benchmarks named "+ JSON", as `rummy parse` does).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// Replies of the kinds models send: short calls with narration, big file
/// writes, edits, foreign formats, quoted tags, broken markup.
fn corpus() -> Vec<String> {
    let source: String = (0..400)
        .map(|i| format!("    let value_{i} = compute({i}) * 2; // keep <T> & co\n"))
        .collect();
    let html: String = (0..150)
        .map(|i| format!("<div class=\"row\" id=\"r{i}\"><span>{i}</span><br/>&nbsp;</div>\n"))
        .collect();
    let prose = "I looked at the configuration and the port is set in two places. \
                 The tests expect 8080, so I will change the default and record the fact.\n";
    vec![
        format!("{prose}<get path=\"src/config.js\"/>\n<update status=\"102\">Reading config.</update>"),
        format!("<set path=\"src/big.rs\">\nfn main() {{\n{source}}}\n</set>\n<update status=\"200\">Wrote the file.</update>"),
        format!("<set path=\"src/page.html\">\n{html}</set>"),
        "<set path=\"src/config.js\">\n<<<<<<< SEARCH\nconst port = 3000;\n=======\nconst port = 8080;\n>>>>>>> REPLACE\n</set>\n<set path=\"known://port\" summary=\"port,config\">The server listens on 8080.</set>\n<update status=\"155\">Port updated</update>".to_string(),
        "<|tool_call>call:get{path:<|\"|>src/app.js<|\"|>}<tool_call|>\n{\"name\":\"search\",\"arguments\":{\"query\":\"wal mode\"}}\n```xml\n<sh>npm test</sh>\n```".to_string(),
        format!("{prose}Remember: `<get/>` promotes and `<set/>` writes.\n<think>{prose}{prose}</think><get path=\"known://*\">port</get><rm path=\"unknown://old\"></unknown><update>next</update>"),
        format!("<set path=\"known://plan\">- step one\n- use <get path=\"data.txt\"/> to read\n{prose}</update>\n<update status=\"200\">done"),
        format!("{prose}{prose}{prose}No tools this time, just thinking out loud about x < y and a > b."),
        "<set path=\"f.js\">s/foo/bar/g;s|/usr/bin|/opt/bin|</set><mv path=\"known://a\">known://b</mv><ask_user question=\"Which DB?\">PG; SQLite</ask_user>".to_string(),
    ]
}

/// 182 short replies: one or two calls, sometimes a line of narration.
fn short_corpus() -> Vec<String> {
    let paths = [
        "src/app.js",
        "src/config.rs",
        "README.md",
        "known://plan",
        "known://port",
        "unknown://why",
        "tests/a.rs",
        "lib/x.py",
    ];
    let words = [
        "Reading the file now to check it",
        "Checking what the tests expect",
        "Next step is the config",
        "Looking at the configuration file",
        "Done with this part",
        "Writing a note for later",
    ];
    (0..182usize)
        .map(|i| {
            let p = paths[(i * 5) % paths.len()];
            let w = words[(i * 7) % words.len()];
            match i % 7 {
                0 | 2 => format!("{w}.\n<get path=\"{p}\"/>"),
                1 => format!("<update status=\"102\">{w}.</update>"),
                3 => format!("<set path=\"known://n{i}\">fact {i}: {w}</set>"),
                4 => format!("<rm path=\"{p}\"/><update>{w}</update>"),
                5 => format!("<sh>ls src</sh>\n<update status=\"102\">{w}</update>"),
                _ => format!("<update status=\"200\">{w}.</update>"),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let replies = corpus();
    let bytes: usize = replies.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parser");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse mixed corpus", |b| {
        b.iter(|| {
            for r in &replies {
                black_box(rummy::parse::parse(black_box(r), 99));
            }
        })
    });
    group.bench_function("parse + JSON mixed corpus", |b| {
        b.iter(|| {
            for r in &replies {
                black_box(rummy::parse::parse(black_box(r), 99).to_json());
            }
        })
    });
    group.finish();

    let short = short_corpus();
    let bytes: usize = short.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parser short replies");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse 182 short replies", |b| {
        b.iter(|| {
            for r in &short {
                black_box(rummy::parse::parse(black_box(r), 99));
            }
        })
    });
    group.bench_function("parse + JSON 182 short replies", |b| {
        b.iter(|| {
            for r in &short {
                black_box(rummy::parse::parse(black_box(r), 99).to_json());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
