//! Failed-claim timing (issue 4, SPEC §2 "Pairing guesses"): an unknown code and an expired one
//! must take the same time to be refused, so a guesser cannot learn that a code once existed.
//! This measures `Relay::claim` (the whole domain path: agent id, guess budget, key generation,
//! store lookup, error) for unknown, expired and already-used codes, interleaved, and prints the
//! median and 90th percentile of each (figures in `docs/SECURITY.md`). No assertions: timing
//! belongs to benchmarks.
//!
//! ```sh
//! cargo bench -p nexus-server --bench claim_timing
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_proto::PairCode;
use nexus_server::clock::Clock;
use nexus_server::config::Config;
use nexus_server::domain::Relay;
use nexus_server::store::embedded::EmbeddedStore;
use serde_json::{Value, json};

const PER_KIND: usize = 5_000;
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn new_code(relay: &Relay) -> String {
    let created = relay
        .create_session(
            None,
            json!({"creatorAgentId": "alice"}).to_string().as_bytes(),
        )
        .await
        .expect("create");
    let body = json!({"sessionId": created.session_id}).to_string();
    relay.create_code(body.as_bytes()).await.expect("code").code
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = Config::defaults();
        config.claim_failures_per_minute = u64::MAX;
        config.claim_failures_global_per_minute = u64::MAX;
        config.max_sessions = u64::MAX;
        let clock = Clock::starting_at(1_795_600_800_000);
        let store = Arc::new(EmbeddedStore::in_memory(Relay::deadlines(&config)));
        let relay = Relay::new(config, clock, store, "http://relay.test".into());

        let mut expired = Vec::with_capacity(PER_KIND);
        for _ in 0..PER_KIND {
            expired.push(new_code(&relay).await);
        }
        // Past the codes' 600 s lifetime, well inside the sessions' 3660 s TTL.
        tokio::time::advance(Duration::from_secs(601)).await;
        let mut used = Vec::with_capacity(PER_KIND);
        for _ in 0..PER_KIND {
            let code = new_code(&relay).await;
            relay
                .claim(&code, Some("bob"), CLIENT)
                .await
                .expect("claim");
            used.push(code);
        }
        let mut unknown = Vec::with_capacity(PER_KIND);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        while unknown.len() < PER_KIND {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let code = PairCode::from_random(seed >> 17).to_string();
            if !expired.contains(&code) && !used.contains(&code) {
                unknown.push(code);
            }
        }

        let kinds: [(&str, &Vec<String>); 3] = [
            ("unknown", &unknown),
            ("expired", &expired),
            ("used", &used),
        ];
        let mut times: Vec<Vec<Duration>> = (0..3).map(|_| Vec::with_capacity(PER_KIND)).collect();
        let mut errors: Vec<Value> = vec![Value::Null; 3];
        for i in 0..PER_KIND {
            for (k, (_, codes)) in kinds.iter().enumerate() {
                let started = Instant::now();
                let result = relay.claim(&codes[i], Some("mallory"), CLIENT).await;
                times[k].push(started.elapsed());
                let err = result.err().map(|e| json!(e.code().as_str()));
                errors[k] = err.unwrap_or(json!("claimed?!"));
            }
        }
        println!("failed claims, {PER_KIND} each, interleaved (Relay::claim, embedded store):");
        println!("| code | answer | median | p90 |");
        println!("|---|---|---:|---:|");
        for (k, (name, _)) in kinds.iter().enumerate() {
            times[k].sort();
            println!(
                "| {name} | {} | {:.2} µs | {:.2} µs |",
                errors[k].as_str().unwrap_or_default(),
                percentile(&times[k], 0.5).as_secs_f64() * 1e6,
                percentile(&times[k], 0.9).as_secs_f64() * 1e6,
            );
        }
    });
}
