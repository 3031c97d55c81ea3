//! Encoding what the node sends to the scripts and decoding what they answer: session records
//! from the session hash's fields, messages from sorted-set entries (`"<cursor> <verified>
//! <expiresAt> <payload JSON>"`, the payload written by the node, the rest by the script), and the
//! scripts' status replies. Anything malformed is `StoreError::Corrupt`, naming the field but
//! never its value.

use std::collections::HashMap;
use std::sync::Arc;

use nexus_proto::time::Millis;
use nexus_proto::{AgentId, Cursor, SessionId, SessionKey};
use redis::Value;
use serde::{Deserialize, Serialize};

use crate::store::{
    MemberRecord, NewMessage, SessionRecord, StoreError, StoreResult, StoredMessage,
};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// The bytes of a string reply.
pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

pub fn text(v: &Value) -> Option<&str> {
    bytes(v).and_then(|b| std::str::from_utf8(b).ok())
}

pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// A script's `{status, …}` reply: the status and the rest.
pub fn status(v: &Value) -> StoreResult<(&str, &[Value])> {
    match v {
        Value::Array(items) => {
            let (first, rest) = items.split_first().ok_or_else(|| corrupt("empty reply"))?;
            Ok((text(first).ok_or_else(|| corrupt("reply status"))?, rest))
        }
        other => Ok((text(other).ok_or_else(|| corrupt("reply status"))?, &[])),
    }
}

/// The message as the node writes it; the script adds cursor, verification and expiry.
#[derive(Serialize, Deserialize)]
struct Payload {
    id: String,
    #[serde(rename = "a")]
    agent: String,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    json: Option<serde_json::Value>,
    #[serde(rename = "s")]
    sent_at: Millis,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
}

/// The payload of a new message, as JSON.
pub fn payload(m: &NewMessage, sent_at: Millis) -> StoreResult<String> {
    serde_json::to_string(&Payload {
        id: m.id.clone(),
        agent: m.agent_id.as_str().to_owned(),
        text: m.text.clone(),
        json: m.json.clone(),
        sent_at,
        idempotency_key: m.idempotency.as_ref().map(|(k, _)| k.clone()),
    })
    .map_err(|_| corrupt("message payload"))
}

/// A message from its sorted-set entry.
pub fn message(entry: &Value) -> StoreResult<Arc<StoredMessage>> {
    let raw = text(entry).ok_or_else(|| corrupt("message entry"))?;
    let mut parts = raw.splitn(4, ' ');
    let mut next = |what| parts.next().ok_or_else(|| corrupt(what));
    let cursor: u64 = next("cursor")?
        .parse()
        .map_err(|_| corrupt("message cursor"))?;
    let verified = next("verified")? == "1";
    let expires_at: Millis = next("expiry")?
        .parse()
        .map_err(|_| corrupt("message expiry"))?;
    let p: Payload =
        serde_json::from_str(next("payload")?).map_err(|_| corrupt("message payload"))?;
    Ok(Arc::new(StoredMessage {
        id: p.id,
        agent_id: AgentId::parse(&p.agent).map_err(|_| corrupt("message agent id"))?,
        text: p.text,
        json: p.json,
        cursor: Cursor(cursor),
        verified,
        sent_at: p.sent_at,
        expires_at,
        idempotency_key: p.idempotency_key,
    }))
}

/// A session record from the session hash's fields and values (a flat list).
pub fn record(id: &SessionId, fields: &Value) -> StoreResult<SessionRecord> {
    let Value::Array(items) = fields else {
        return Err(corrupt("session fields"));
    };
    let mut h: HashMap<&str, &str> = HashMap::with_capacity(items.len() / 2);
    for pair in items.chunks(2) {
        if let [k, v] = pair {
            let k = text(k).ok_or_else(|| corrupt("session field name"))?;
            let v = text(v).ok_or_else(|| corrupt("session field value"))?;
            h.insert(k, v);
        }
    }
    let num = |f: &str| -> StoreResult<u64> {
        h.get(f)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(&format!("session field {f}")))
    };
    let mut members = Vec::new();
    for (k, v) in &h {
        let Some(agent) = k.strip_prefix("m:") else {
            continue;
        };
        let mut parts = v.split(' ');
        let mut field = |what: &str| -> StoreResult<&str> {
            parts
                .next()
                .ok_or_else(|| corrupt(&format!("member {what}")))
        };
        let seq: u64 = field("seq")?.parse().map_err(|_| corrupt("member seq"))?;
        let joined_at: Millis = field("joinedAt")?
            .parse()
            .map_err(|_| corrupt("member joinedAt"))?;
        let last_seen_at: Millis = field("lastSeenAt")?
            .parse()
            .map_err(|_| corrupt("member lastSeenAt"))?;
        let key_digest = field("key")?;
        members.push((
            seq,
            MemberRecord {
                agent_id: AgentId::parse(agent).map_err(|_| corrupt("member agent id"))?,
                key: SessionKey::from_stored(key_digest.to_owned()),
                joined_at,
                last_seen_at,
            },
        ));
    }
    // Join order, as the agents list shows it.
    members.sort_by_key(|(seq, _)| *seq);
    let creator = match h.get("cr") {
        Some(c) => Some(AgentId::parse(c).map_err(|_| corrupt("creator id"))?),
        None => None,
    };
    let last_cursor = num("c")?;
    Ok(SessionRecord {
        id: id.clone(),
        ttl_secs: num("ttl")?,
        max_agents: num("max")?,
        created_at: num("ca")?,
        expires_at: num("x")?,
        creator,
        greeting: h.get("g").map(|g| (*g).to_owned()),
        members: members.into_iter().map(|(_, m)| m).collect(),
        last_cursor,
        // Redis holds the exact counter: nothing is reserved ahead.
        cursor_ceiling: last_cursor,
        lost_through: num("lt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_session_hash_becomes_a_record_with_members_in_join_order() {
        let id = SessionId::from_random([1; 24]);
        let kd = "a".repeat(64);
        let fields = Value::Array(
            [
                ("ttl", "60".to_owned()),
                ("max", "5".to_owned()),
                ("ca", "1000".to_owned()),
                ("x", "61000".to_owned()),
                ("c", "7".to_owned()),
                ("lt", "2".to_owned()),
                ("ms", "2".to_owned()),
                ("cr", "alice".to_owned()),
                ("g", "hello there".to_owned()),
                ("m:bob", format!("2 2000 3000 {kd}")),
                ("m:alice", format!("1 1000 1000 {kd}")),
            ]
            .iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect(),
        );
        let rec = record(&id, &fields).unwrap();
        assert_eq!(rec.agent_ids(), ["alice", "bob"]);
        assert_eq!(rec.members[1].last_seen_at, 3000);
        assert_eq!(rec.greeting.as_deref(), Some("hello there"));
        assert_eq!(
            (rec.last_cursor, rec.cursor_ceiling, rec.lost_through),
            (7, 7, 2)
        );
        assert_eq!(rec.creator.as_ref().map(AgentId::as_str), Some("alice"));
        let broken = Value::Array(vec![bulk("ttl"), bulk("x")]);
        assert!(matches!(record(&id, &broken), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_message_survives_the_round_trip_through_its_entry() {
        let new = NewMessage {
            id: "msg_1".into(),
            agent_id: AgentId::parse("bob").unwrap(),
            key: None,
            text: Some("two words".into()),
            json: Some(serde_json::json!({"k": [1, 2.5, "x y"]})),
            idempotency: Some(("retry-1".into(), [0; 32])),
        };
        let entry = format!("42 1 99000 {}", payload(&new, 5000).unwrap());
        let m = message(&bulk(&entry)).unwrap();
        assert_eq!(m.cursor, Cursor(42));
        assert!(m.verified);
        assert_eq!((m.sent_at, m.expires_at), (5000, 99000));
        assert_eq!(m.text.as_deref(), Some("two words"));
        assert_eq!(m.json, new.json);
        assert_eq!(m.idempotency_key.as_deref(), Some("retry-1"));
        assert!(message(&bulk("42 1")).is_err());
    }
}
