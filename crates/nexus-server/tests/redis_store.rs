//! The Redis backend at the storage-trait level, against a real `redis-server` (issue 7): what
//! the router suite cannot see from HTTP — one round trip per send, no secret in any key name,
//! every key with a lifetime, single-use claims under a race between two stores (two "nodes"),
//! wake-ups across stores through pub/sub, a subscriber that survives a Redis restart, a lost
//! wake-up costing a re-read and never a message, idempotency entries dropped with their
//! messages, and the keys' lifetime pushed only near its horizon.
//! Real time, no paused clock: nothing here waits for a TTL (deadlines are passed as `now`).

mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use nexus_proto::time::Millis;
use nexus_proto::{AgentId, PairCode, SessionId, SessionKey};
use nexus_server::clock::Clock;
use nexus_server::config::Config;
use nexus_server::domain::Relay;
use nexus_server::store::redis::codec;
use nexus_server::store::redis::keys::Keys;
use nexus_server::store::redis::{RedisOptions, RedisStore};
use nexus_server::store::*;
use redis_server::RedisServer;

const T0: Millis = 1_795_600_800_000;
const DEADLINES: Deadlines = Deadlines {
    inactivity_ms: None,
    code_memory_ms: 600_000,
};
const LIMITS: AppendLimits = AppendLimits {
    max_messages: 10_000,
    require_key: false,
};

fn agent(s: &str) -> AgentId {
    AgentId::parse(s).unwrap()
}

fn key(c: char) -> SessionKey {
    SessionKey::from_stored(c.to_string().repeat(64))
}

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(RedisOptions::new(server.url()), DEADLINES)
        .await
        .expect("connect")
}

/// A session created by `alice` (key "a…a"), ttl one hour.
async fn session(store: &RedisStore, seed: u8) -> SessionId {
    session_with_ttl(store, seed, 3600).await
}

/// A session created by `alice` (key "a…a") at `T0`.
async fn session_with_ttl(store: &RedisStore, seed: u8, ttl_secs: u64) -> SessionId {
    let id = SessionId::from_random([seed; 24]);
    let record = SessionRecord {
        id: id.clone(),
        ttl_secs,
        max_agents: 50,
        created_at: T0,
        expires_at: T0 + ttl_secs * 1000,
        creator: Some(agent("alice")),
        greeting: Some("hello".into()),
        members: vec![MemberRecord {
            agent_id: agent("alice"),
            key: key('a'),
            joined_at: T0,
            last_seen_at: T0,
        }],
        last_cursor: 0,
        cursor_ceiling: 0,
        lost_through: 0,
    };
    assert!(store.create_session(record, 100).await.unwrap());
    id
}

fn message(from: &str, key: Option<&str>, text: &str) -> NewMessage {
    NewMessage {
        id: format!("msg_{text}"),
        agent_id: agent(from),
        key: key.map(str::to_owned),
        text: Some(text.into()),
        json: None,
        idempotency: Some((format!("idem-{text}"), [7; 32])),
    }
}

async fn send(store: &RedisStore, id: &SessionId, text: &str) -> u64 {
    let a = "a".repeat(64);
    match store
        .append(id, message("alice", Some(&a), text), LIMITS, T0 + 1)
        .await
        .unwrap()
    {
        AppendOutcome::Stored(m) => {
            assert!(m.verified);
            m.cursor.0
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// `calls` of every command from `INFO commandstats`.
fn command_calls(server: &RedisServer) -> Vec<(String, u64)> {
    server
        .command(&["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats
                .split(',')
                .next()?
                .strip_prefix("calls=")?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test]
async fn a_send_is_one_round_trip() {
    let server = RedisServer::start();
    let store = connect(&server).await;
    let id = session(&store, 1).await;
    send(&store, &id, "warm-up").await; // loads the script once
    server.command(&["CONFIG", "RESETSTAT"]);
    for i in 0..10 {
        send(&store, &id, &format!("m{i}")).await;
    }
    let calls = command_calls(&server);
    // Exactly one EVALSHA per send ...
    let evalsha = calls.iter().find(|(n, _)| n == "evalsha").map(|c| c.1);
    assert_eq!(evalsha, Some(10), "{calls:?}");
    // ... and every other command counted was run by the script itself (commandstats counts
    // those too), or is this check's own INFO.
    let script = concat!(
        include_str!("../src/store/redis/lua/prelude.lua"),
        include_str!("../src/store/redis/lua/messages.lua"),
        include_str!("../src/store/redis/lua/append.lua")
    )
    .to_lowercase();
    let others: Vec<_> = calls
        .iter()
        .filter(|(n, _)| !["evalsha", "info", "config|resetstat", "ping"].contains(&n.as_str()))
        .filter(|(n, _)| !script.contains(&format!("redis.call('{n}'")))
        .collect();
    assert!(
        others.is_empty(),
        "commands from the client besides EVALSHA: {others:?}"
    );
}

#[tokio::test]
async fn no_secret_appears_in_a_key_name_and_every_key_expires() {
    let server = RedisServer::start();
    let store = connect(&server).await;
    let id = session(&store, 2).await;
    let code = PairCode::from_random(12345);
    store
        .create_code(CodeRecord::fresh(code.clone(), id.clone(), T0, 600_000))
        .await
        .unwrap();
    // A first message without an Idempotency-Key, then one with: the idempotency hash is created
    // by a later send, and must get a lifetime too.
    let a = "a".repeat(64);
    let plain = NewMessage {
        idempotency: None,
        ..message("alice", Some(&a), "plain")
    };
    let stored = store.append(&id, plain, LIMITS, T0 + 1).await.unwrap();
    assert!(matches!(stored, AppendOutcome::Stored(_)), "{stored:?}");
    send(&store, &id, "secret-text").await;
    let claimed = store
        .claim_code(&code, &agent("bob"), key('b'), T0 + 2)
        .await
        .unwrap();
    assert!(
        matches!(claimed, ClaimOutcome::Claimed { .. }),
        "{claimed:?}"
    );
    let keys = server.command(&["KEYS", "*"]);
    assert!(!keys.is_empty());
    for secret in [
        id.as_str(),
        code.as_str(),
        &"a".repeat(64),
        &"b".repeat(64),
        "secret-text",
    ] {
        assert!(!keys.contains(secret), "a key name holds a secret: {keys}");
    }
    // Every key but the sessions index has a lifetime.
    let names: Vec<String> = keys
        .split("\r\n")
        .filter(|l| l.starts_with("nexus:"))
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in names.iter().filter(|n| *n != "nexus:sessions") {
        let ttl: i64 = server.command(&["PTTL", name]).parse().unwrap();
        assert!(ttl > 0, "{name} has no expiry ({ttl})");
    }
    // Session keys are kept as SHA-256 digests only.
    let tag_key = names.iter().find(|n| n.ends_with(":s")).unwrap();
    let fields = server.command(&["HGETALL", tag_key]);
    assert!(!fields.contains(&"a".repeat(64)), "{fields}");
}

#[tokio::test]
async fn two_nodes_racing_for_one_code_claim_it_once() {
    let server = RedisServer::start();
    let a = Arc::new(connect(&server).await);
    let b = Arc::new(connect(&server).await);
    for round in 0..20u8 {
        let id = session(&a, 100 + round).await;
        let code = PairCode::from_random(1000 + u64::from(round));
        a.create_code(CodeRecord::fresh(code.clone(), id.clone(), T0, 600_000))
            .await
            .unwrap();
        let claims = [("x", a.clone()), ("y", b.clone())].map(|(who, store)| {
            let code = code.clone();
            tokio::spawn(async move {
                store
                    .claim_code(&code, &agent(who), key('c'), T0 + 5)
                    .await
                    .unwrap()
            })
        });
        let mut won = 0;
        for claim in claims {
            match claim.await.unwrap() {
                ClaimOutcome::Claimed { .. } => won += 1,
                ClaimOutcome::ExpiredOrUsed => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
        let rec = b.session(&id, T0 + 6).await.unwrap().unwrap();
        assert_eq!(rec.members.len(), 2, "exactly one claimer joined");
    }
}

/// What a long-poll does before it parks: subscribe, then read as a member (which makes the
/// store subscribe to the session's channel).
async fn poll_then_park(store: &RedisStore, id: &SessionId) -> Wakeup {
    let waiter = store.subscribe(id).expect("a handle");
    let page = store
        .read(id, &agent("alice"), None, 10, T0 + 2)
        .await
        .unwrap();
    assert!(matches!(page, ReadOutcome::Page(_)), "{page:?}");
    waiter
}

/// Waits at most `secs` for `waiter` to be woken; `what` names the wake-up expected.
async fn woken(waiter: &mut Wakeup, secs: u64, what: &str) {
    tokio::time::timeout(Duration::from_secs(secs), waiter.changed())
        .await
        .unwrap_or_else(|_| panic!("expected: {what}; nothing within {secs} s"))
        .expect("the session's channel is open");
}

/// A parked waiter on `store` for `id`, once the store's subscription to the session is active
/// (Redis's confirmation wakes it once, so that anything sent before is re-read).
async fn subscribed(store: &RedisStore, id: &SessionId) -> Wakeup {
    let mut waiter = poll_then_park(store, id).await;
    woken(&mut waiter, 5, "the subscription is confirmed").await;
    waiter.borrow_and_update();
    waiter
}

#[tokio::test]
async fn a_send_on_one_node_wakes_a_waiter_on_another() {
    let server = RedisServer::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let id = session(&a, 3).await;
    let mut waiter = subscribed(&b, &id).await;
    let cursor = send(&a, &id, "across").await;
    woken(&mut waiter, 5, "woken through pub/sub").await;
    assert_eq!(*waiter.borrow(), cursor);
}

#[tokio::test]
async fn only_nodes_with_waiters_subscribe_to_a_session() {
    let server = RedisServer::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let quiet = session(&a, 6).await;
    let busy = session(&a, 7).await;
    let _waiter = subscribed(&b, &busy).await;
    // A handle alone (a poll that did not read yet, or of a made-up id) subscribes nothing.
    let _handle = b.subscribe(&quiet).expect("a handle");
    let _made_up = b
        .subscribe(&SessionId::from_random([99; 24]))
        .expect("a handle");
    let channels = server.command(&["PUBSUB", "CHANNELS", "nexus:wake:*"]);
    assert_eq!(channels.lines().count(), 1, "{channels}");
    for id in [&quiet, &busy] {
        assert!(
            !channels.contains(id.as_str()),
            "a session id in a channel name"
        );
    }
    let numsub = |ch: &str| server.command(&["PUBSUB", "NUMSUB", ch]);
    assert!(
        numsub(&channels).ends_with("\r\n1"),
        "{}",
        numsub(&channels)
    );
}

#[tokio::test]
async fn a_send_racing_a_fresh_subscription_still_wakes_the_waiter() {
    let server = RedisServer::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    for seed in 10..30 {
        let id = session(&a, seed).await;
        // No waiting for the subscription: the send may be published before it is active; then
        // its confirmation wakes the waiter, which re-reads and finds the message.
        let mut waiter = poll_then_park(&b, &id).await;
        send(&a, &id, "racing").await;
        woken(
            &mut waiter,
            5,
            "woken by the message or by the confirmation",
        )
        .await;
        let page = b
            .read(&id, &agent("alice"), None, 10, T0 + 2)
            .await
            .unwrap();
        let ReadOutcome::Page(page) = page else {
            panic!("unexpected {page:?}");
        };
        assert_eq!(page.messages.len(), 1);
    }
}

#[tokio::test]
async fn the_subscriber_reconnects_after_a_redis_restart_and_wakes_its_waiters() {
    let mut server = RedisServer::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let id = session(&a, 4).await;
    let mut waiter = subscribed(&b, &id).await;
    server.kill();
    server.start_again();
    // On resubscription every local waiter is woken once (anything sent meanwhile is re-read).
    woken(&mut waiter, 10, "woken after the resubscription").await;
    // Each pool notices the restart on its next command (503 store_unavailable for that request)
    // and reconnects by itself.
    for store in [&a, &b] {
        let mut up = false;
        for _ in 0..100 {
            match store.ping().await {
                Ok(()) => {
                    up = true;
                    break;
                }
                Err(StoreError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(up, "the pool reconnects");
    }
    // Without persistence the session is gone: the store says so instead of failing.
    assert!(a.session(&id, T0 + 1).await.unwrap().is_none());
    // And wake-ups flow again across nodes.
    let id = session(&a, 5).await;
    let mut waiter = subscribed(&b, &id).await;
    let cursor = send(&a, &id, "again").await;
    woken(&mut waiter, 5, "woken through the new subscription").await;
    assert_eq!(*waiter.borrow(), cursor);
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_corrupt() {
    let mut server = RedisServer::start();
    let store = connect(&server).await;
    server.kill();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.session(&SessionId::from_random([6; 24]), T0).await;
    assert!(
        matches!(err, Err(StoreError::Unavailable(_))),
        "{:?}",
        err.map(|_| ())
    );
    server.start_again();
    let mut ok = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the pool reconnects by itself");
}

#[tokio::test]
async fn a_code_that_is_already_known_is_never_overwritten() {
    let server = RedisServer::start();
    let (a, b) = (connect(&server).await, connect(&server).await);
    let first = session(&a, 7).await;
    let second = session(&b, 8).await;
    let code = PairCode::from_random(777);
    let record =
        |session_id: &SessionId| CodeRecord::fresh(code.clone(), session_id.clone(), T0, 600_000);
    assert!(a.create_code(record(&first)).await.unwrap());
    // Another node draws the same code for another session: refused, nothing written.
    assert!(!b.create_code(record(&second)).await.unwrap());
    let claimed = b
        .claim_code(&code, &agent("bob"), key('b'), T0 + 1)
        .await
        .unwrap();
    match claimed {
        ClaimOutcome::Claimed { record } => assert_eq!(record.id, first, "still the first session"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Alice's send of `text` with Idempotency-Key `key` and body digest `digest`, at `now`.
async fn send_with_key(
    store: &RedisStore,
    id: &SessionId,
    text: &str,
    key: &str,
    digest: u8,
    now: Millis,
) -> AppendOutcome {
    let msg = NewMessage {
        idempotency: Some((key.to_owned(), [digest; 32])),
        ..message("alice", Some(&"a".repeat(64)), text)
    };
    store.append(id, msg, LIMITS, now).await.unwrap()
}

fn stored_cursor(outcome: &AppendOutcome) -> u64 {
    match outcome {
        AppendOutcome::Stored(m) => m.cursor.0,
        other => panic!("unexpected {other:?}"),
    }
}

/// Entries in a hash or sorted set, read directly from Redis (0 when the key does not exist).
fn count(server: &RedisServer, cmd: &str, key: &str) -> u64 {
    server.command(&[cmd, key]).parse().unwrap()
}

#[tokio::test]
async fn idempotency_entries_live_as_long_as_their_messages() {
    let server = RedisServer::start();
    let store = connect(&server).await;
    let id = session(&store, 40).await;
    let keys = Keys::new("nexus").session(&id);
    const TTL_MS: Millis = 3_600_000;
    // A retry while the message is held returns the original; another body is refused.
    let first = send_with_key(&store, &id, "first", "k-first", 1, T0 + 1).await;
    let first = stored_cursor(&first);
    match send_with_key(&store, &id, "first", "k-first", 1, T0 + 2).await {
        AppendOutcome::Repeated(m) => assert_eq!(m.cursor.0, first),
        other => panic!("unexpected {other:?}"),
    }
    let reused = send_with_key(&store, &id, "other", "k-first", 2, T0 + 3).await;
    assert!(
        matches!(reused, AppendOutcome::IdempotencyKeyReused),
        "{reused:?}"
    );
    assert_eq!(count(&server, "HLEN", &keys.idempotency), 1);
    // A long-lived session with a key on every send, one send every 1000 s (the session's expiry
    // slides with each; each message expires an hour after it was sent): the idempotency hash
    // holds the keys of the messages held, never more.
    for i in 1..=20u64 {
        let now = T0 + i * 1_000_000;
        let cursor =
            stored_cursor(&send_with_key(&store, &id, "tick", &format!("k{i}"), 3, now).await);
        // Held: the messages sent within the last hour (the first one until the fourth send).
        let held = i.min(4) + u64::from(i < 4);
        assert_eq!(count(&server, "ZCARD", &keys.messages), held, "send {i}");
        assert_eq!(count(&server, "ZCARD", &keys.expiries), held, "send {i}");
        assert_eq!(count(&server, "HLEN", &keys.idempotency), held, "send {i}");
        // The previous send's key, its message still held: the original comes back.
        if i > 1 {
            match send_with_key(&store, &id, "tick", &format!("k{}", i - 1), 3, now + 1).await {
                AppendOutcome::Repeated(m) => assert_eq!(m.cursor.0, cursor - 1, "send {i}"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(count(&server, "HLEN", &keys.idempotency), 4);
    // The first key was forgotten with its message: any body is a new message now.
    let now = T0 + 20 * 1_000_000 + 2;
    let again = send_with_key(&store, &id, "other", "k-first", 2, now).await;
    assert!(stored_cursor(&again) > first);
    // Reads keep the session alive; one after every message expired leaves the hash empty (and
    // Redis deletes it).
    for (at, messages) in [(now + 1_000_000, 4), (now + TTL_MS + 1, 0)] {
        let page = store
            .read(&id, &agent("alice"), None, 10, at)
            .await
            .unwrap();
        let ReadOutcome::Page(page) = page else {
            panic!("unexpected {page:?}");
        };
        assert_eq!(page.messages.len(), messages);
        assert_eq!(count(&server, "HLEN", &keys.idempotency), messages as u64);
    }
    assert_eq!(count(&server, "HLEN", &keys.idempotency), 0);
    assert_eq!(count(&server, "EXISTS", &keys.idempotency), 0);
}

/// `field` of the hash `key`, read directly from Redis.
fn hget(server: &RedisServer, key: &str, field: &str) -> Millis {
    server.command(&["HGET", key, field]).parse().unwrap()
}

#[tokio::test]
async fn a_busy_session_pushes_its_keys_lifetime_only_when_it_comes_near() {
    const GRACE: Millis = 10_000;
    const TTL: Millis = 60_000;
    const STEP: Millis = 2_000;
    let server = RedisServer::start();
    let options = RedisOptions {
        grace: Duration::from_millis(GRACE),
        ..RedisOptions::new(server.url())
    };
    let store = RedisStore::connect(options, DEADLINES).await.unwrap();
    let id = session_with_ttl(&store, 41, TTL / 1000).await;
    let keys = Keys::new("nexus").session(&id);
    let a = "a".repeat(64);
    // The first send creates the messages, expiries and idempotency keys: a push.
    let stored = store
        .append(&id, message("alice", Some(&a), "s0"), LIMITS, T0 + 1)
        .await
        .unwrap();
    assert!(matches!(stored, AppendOutcome::Stored(_)), "{stored:?}");
    let first_horizon = hget(&server, &keys.hash, "px");
    assert_eq!(first_horizon, T0 + 1 + TTL + GRACE);
    // A send every STEP for three horizons. Redis's clock does not follow the injected one, so
    // each step first ages the keys as if it did (PEXPIRE to `px` - now): a push that did not
    // happen would show as a PTTL shorter than the session's remaining life.
    let (mut pushes, mut steps) = (0, 0);
    let mut now = T0 + 1;
    while now < first_horizon + 2 * TTL {
        now += STEP;
        steps += 1;
        let before = hget(&server, &keys.hash, "px");
        for key in keys.all() {
            assert_eq!(
                server.command(&["PEXPIRE", key, &(before - now).to_string()]),
                "1"
            );
        }
        let sent = store
            .append(
                &id,
                message("alice", Some(&a), &format!("s{steps}")),
                LIMITS,
                now,
            )
            .await
            .unwrap();
        assert!(matches!(sent, AppendOutcome::Stored(_)), "{sent:?}");
        let after = hget(&server, &keys.hash, "px");
        let deadline = now + TTL;
        if deadline + GRACE / 2 > before {
            // Within grace/2 of the horizon: pushed to the new deadline + grace, on every key.
            assert_eq!(after, deadline + GRACE, "step {steps}");
            pushes += 1;
        } else {
            assert_eq!(after, before, "step {steps}: pushed too early");
        }
        for key in keys.all() {
            let pttl: Millis = server.command(&["PTTL", key]).parse().unwrap();
            // The keys outlive the session's deadline by at least grace/2 (less the real time
            // this step took), and never by more than the horizon says.
            assert!(pttl <= after - now, "step {steps}: {key} {pttl}");
            assert!(
                pttl + 1_000 >= TTL + GRACE / 2,
                "step {steps}: {key} {pttl}"
            );
        }
    }
    // Pushed about once per grace/2 of activity, not on every send.
    assert!(
        pushes >= 2 * TTL / (GRACE / 2),
        "{pushes} pushes in {steps} steps"
    );
    assert!(pushes * 2 <= steps, "{pushes} pushes in {steps} steps");
    // Long past the first horizon, the session is served with its recent messages.
    assert!(now > first_horizon + TTL);
    let page = store
        .read(&id, &agent("alice"), None, 100, now + 1)
        .await
        .unwrap();
    let ReadOutcome::Page(page) = page else {
        panic!("unexpected {page:?}");
    };
    assert_eq!(page.record.expires_at, now + 1 + TTL);
    assert_eq!(page.messages.len() as u64, TTL / STEP);
}

/// `EVALSHA` calls counted by Redis since the last `CONFIG RESETSTAT`.
fn evalsha_calls(server: &RedisServer) -> u64 {
    command_calls(server)
        .into_iter()
        .find(|(n, _)| n == "evalsha")
        .map_or(0, |c| c.1)
}

#[tokio::test]
async fn a_lost_wake_up_costs_a_re_read_at_the_timeout_never_a_message() {
    let server = RedisServer::start();
    let store = Arc::new(connect(&server).await);
    let id = session(&store, 42).await;
    let keys = Keys::new("nexus").session(&id);
    // Loads the read script (a NOSCRIPT retry would count twice below); no waiter, no subscription.
    let warm = store.read(&id, &agent("alice"), None, 10, T0 + 1).await;
    assert!(matches!(warm, Ok(ReadOutcome::Page(_))));
    let relay = Arc::new(Relay::new(
        Config::defaults(),
        Clock::starting_at(T0 + 2),
        store.clone(),
        "http://relay.test".into(),
    ));
    server.command(&["CONFIG", "RESETSTAT"]);
    let started = std::time::Instant::now();
    let poll = {
        let (relay, sid) = (relay.clone(), id.as_str().to_owned());
        tokio::spawn(async move {
            relay
                .poll(&sid, Some("alice"), Some("after=0&wait=2"))
                .await
        })
    };
    // Parked for good once it made its first read and the re-read its subscription's
    // confirmation causes (the subscription is active from then on).
    while evalsha_calls(&server) < 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        server.command(&["PUBSUB", "NUMSUB", &format!("nexus:wake:{}", keys.tag)]),
        format!("nexus:wake:{}\r\n1", keys.tag)
    );
    // A send whose wake-up reaches no node: the send script itself, publishing on a channel
    // nobody listens to (as if the publish were lost on its way to the waiter's node).
    let now = T0 + 3;
    let msg = NewMessage {
        idempotency: None,
        ..message("alice", None, "lost-wake-up")
    };
    let script = concat!(
        include_str!("../src/store/redis/lua/prelude.lua"),
        "\n",
        include_str!("../src/store/redis/lua/messages.lua"),
        "\n",
        include_str!("../src/store/redis/lua/append.lua")
    );
    let payload = codec::payload(&msg, now).unwrap();
    let (now, tag) = (now.to_string(), keys.tag.clone());
    let [hash, messages, expiries, idempotency] = keys.all();
    let reply = server.command(&[
        "EVAL",
        script,
        "4",
        hash,
        messages,
        expiries,
        idempotency,
        &now,
        "0",
        "60000",
        "nexus:nobody-listens:",
        &tag,
        "alice",
        "",
        "0",
        "100",
        "",
        "",
        &payload,
    ]);
    let cursor: u64 = match reply.split("\r\n").collect::<Vec<_>>().as_slice() {
        ["stored", cursor, ..] => cursor.parse().unwrap(),
        _ => panic!("unexpected {reply:?}"),
    };
    // The poll is not woken: it re-reads when its wait ends, and returns the message then.
    let page = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the poll ends with its wait")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.next_cursor().0, cursor);
    let body = String::from_utf8(page.to_json()).unwrap();
    assert!(body.contains("lost-wake-up"), "{body}");
    // Exactly one re-read more: the one at the timeout.
    assert_eq!(evalsha_calls(&server), 3);
}
