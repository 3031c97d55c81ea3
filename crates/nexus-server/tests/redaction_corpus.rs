//! The redaction corpus (issue 4, item 1): `tests/data/redaction-corpus.json` holds strings that
//! must be redacted (every type of `domain/redact.rs`, in prose, in code and in JSON) and strings
//! that must be left alone (git SHAs, UUIDs, base64 images, hex hashes, ordinary prose and code).
//! The test prints precision and recall and enforces recall = 100 % and at most 2 false
//! positives. `cargo test --test redaction_corpus -- --nocapture` shows the figures.

use nexus_server::domain::redact::redact;
use serde_json::Value;

const CORPUS: &str = include_str!("data/redaction-corpus.json");
const MAX_FALSE_POSITIVES: usize = 2;

/// Redacts an entry's `text` or `json`; the output as one string and the types found.
fn run(entry: &Value) -> (String, Vec<String>) {
    let mut text = entry["text"].as_str().map(str::to_owned);
    let mut json = entry.get("json").cloned();
    let types = redact(&mut text, &mut json);
    let out = match (text, json) {
        (Some(t), _) => t,
        (None, Some(j)) => j.to_string(),
        (None, None) => panic!("corpus entry without text or json: {entry}"),
    };
    (out, types)
}

#[test]
fn corpus_recall_is_total_and_false_positives_are_at_most_two() {
    let corpus: Value = serde_json::from_str(CORPUS).expect("corpus is JSON");
    let positives = corpus["redact"].as_array().expect("redact list");
    let negatives = corpus["keep"].as_array().expect("keep list");
    assert!(positives.len() >= 60, "at least 60 strings to redact");
    assert!(negatives.len() >= 60, "at least 60 strings to keep");

    let mut missed = Vec::new();
    let mut types_seen = std::collections::BTreeSet::new();
    for entry in positives {
        let kind = entry["type"].as_str().expect("type");
        let secret = entry["secret"].as_str().expect("secret");
        types_seen.insert(kind);
        let (out, types) = run(entry);
        let caught = types.iter().any(|t| t == kind)
            && !out.contains(secret)
            && out.contains(&format!("[REDACTED:{kind}]"));
        if !caught {
            missed.push(format!("{kind}: {entry} → {out:?} {types:?}"));
        }
    }
    let mut false_positives = Vec::new();
    for entry in negatives {
        let (out, types) = run(entry);
        if !types.is_empty() {
            false_positives.push(format!("{entry} → {out:?} {types:?}"));
        }
    }

    let tp = positives.len() - missed.len();
    let fp = false_positives.len();
    let recall = tp as f64 / positives.len() as f64;
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    println!(
        "redaction corpus: {} to redact ({} types), {} to keep; recall {:.1} % ({tp}/{}), precision {:.1} % ({fp} false positives)",
        positives.len(),
        types_seen.len(),
        negatives.len(),
        recall * 100.0,
        positives.len(),
        precision * 100.0,
    );
    for m in &missed {
        println!("  missed: {m}");
    }
    for f in &false_positives {
        println!("  false positive: {f}");
    }
    assert!(missed.is_empty(), "recall must be 100 %: {missed:#?}");
    assert!(
        fp <= MAX_FALSE_POSITIVES,
        "at most {MAX_FALSE_POSITIVES} false positives: {false_positives:#?}"
    );
}

#[test]
fn corpus_covers_every_redaction_type() {
    let corpus: Value = serde_json::from_str(CORPUS).expect("corpus is JSON");
    let types: std::collections::BTreeSet<&str> = corpus["redact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in nexus_server::domain::redact::TYPES {
        assert!(types.contains(kind), "no corpus entry of type {kind}");
    }
    // Every type appears in at least two of the three places: prose, code, JSON.
    for kind in nexus_server::domain::redact::TYPES {
        let places: std::collections::BTreeSet<&str> = corpus["redact"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == *kind)
            .map(|e| e["where"].as_str().unwrap())
            .collect();
        assert!(places.len() >= 2, "{kind} appears only in {places:?}");
    }
}
