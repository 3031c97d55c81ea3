//! Redaction benchmark (issue 4): time to redact one 64 KiB message (`MAX_BODY_BYTES`), for
//! several kinds of content. Run in release mode, no timing assertions:
//!
//! ```sh
//! cargo bench -p nexus-server --bench redact          # every kind of content
//! cargo bench -p nexus-server --bench redact -- env   # only kinds whose name contains "env"
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use nexus_server::domain::redact::redact;
use serde_json::{Value, json};

const SIZE: usize = 64 * 1024;

/// Repeats `unit` up to `SIZE` bytes (on a char boundary).
fn fill(unit: &str) -> String {
    let mut s = String::with_capacity(SIZE + unit.len());
    while s.len() + unit.len() <= SIZE {
        s.push_str(unit);
    }
    s
}

/// Median and worst time of `runs` redactions of a fresh copy of the input.
fn measure(text: Option<&str>, json: Option<&Value>, runs: usize) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut t = text.map(str::to_owned);
        let mut j = json.cloned();
        let started = Instant::now();
        let types = redact(&mut t, &mut j);
        times.push(started.elapsed());
        black_box((t, j, types));
    }
    times.sort();
    (times[runs / 2], times[runs - 1])
}

fn main() {
    let prose = fill(
        "The relay forwards messages between agents; nothing here is a secret, just ordinary prose \
         with numbers 12345, a commit 3f786850e387550fdab836ed7e6dc881de23001b and a uuid \
         123e4567-e89b-12d3-a456-426614174000. ",
    );
    let secrets = fill(
        "deploy with AKIAIOSFODNN7EXAMPLE and password=hunter2hunter2, then call \
         https://bob:pa55word@example.com/x with Authorization: Bearer abcdef0123456789abcdef. ",
    );
    let code = fill(
        "fn main() { let password = get_password(); let api_key = std::env::var(\"KEY\")?; \
         for i in 0..n { sum += a[i] * b[i]; } }\n",
    );
    // Every assignment's value is long enough to be scanned again for a secret of its own.
    let assignments = fill(
        "export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123 SESSION_SECRET=0f3c9a2b7d1e4f60a8b5c2d9e7f1a3b4\n",
    );
    let unicode = fill("Ünïcödé prose with émojis 🎉, 日本語のテキスト, and клавиатура. ");
    let base64 = format!(
        "data:image/png;base64,{}",
        fill(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
        )
    );
    let json_doc = json!({
        "items": (0..1000)
            .map(|i| json!({"id": i, "name": format!("item {i}"), "note": "plain text, no secret here"}))
            .collect::<Vec<_>>()
    });
    let json_len = json_doc.to_string().len();

    // Compile the patterns and warm the regex caches first.
    measure(Some(&secrets), None, 3);
    measure(Some(&unicode), None, 3);
    // `cargo bench` passes `--bench`; any other argument selects cases by name.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let runs = 200;
    println!("redacting one 64 KiB message ({runs} runs each; median / worst):");
    for (name, input) in [
        ("prose, no secret", &prose),
        ("prose, a secret every ~170 bytes", &secrets),
        ("source code", &code),
        ("env file: long values, scanned again", &assignments),
        ("non-ASCII prose", &unicode),
        ("base64 image", &base64),
    ] {
        if !wanted(name) {
            continue;
        }
        let (median, worst) = measure(Some(input), None, runs);
        println!(
            "  {name:<36} {:>5} KiB  {:>8.1} µs / {:>8.1} µs",
            input.len() / 1024,
            median.as_secs_f64() * 1e6,
            worst.as_secs_f64() * 1e6
        );
    }
    if !wanted("json, 3000 strings") {
        return;
    }
    let (median, worst) = measure(None, Some(&json_doc), runs);
    println!(
        "  {:<36} {:>5} KiB  {:>8.1} µs / {:>8.1} µs",
        "json, 3000 strings",
        json_len / 1024,
        median.as_secs_f64() * 1e6,
        worst.as_secs_f64() * 1e6
    );
}
