//! The baseline: a bare axum server answering the same requests as the relay with no relay work —
//! the framework ceiling on this machine. `POST /v1/sessions/{id}/messages` parses the JSON body
//! and answers the send response shape (201 `{id, cursor, sentAt, expiresAt, verified}`);
//! `GET /v1/sessions/{id}/messages?after=&limit=` answers a poll page of `limit` made-up messages
//! (`{messages, nextCursor, truncated}`), so poll figures compare equal-sized bodies.
//! Run as `nexus-bench baseline-server --port 0` in its own process, like the relay.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

static CURSOR: AtomicU64 = AtomicU64::new(0);

#[derive(Deserialize)]
struct SendBody {
    text: Option<String>,
    json: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    id: String,
    cursor: String,
    sent_at: &'static str,
    expires_at: &'static str,
    verified: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: String,
    agent_id: String,
    text: String,
    cursor: String,
    verified: bool,
    sent_at: &'static str,
    expires_at: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    messages: Vec<Message>,
    next_cursor: String,
    truncated: bool,
}

const SENT_AT: &str = "2026-11-25T10:00:00.000Z";
const EXPIRES_AT: &str = "2026-11-26T10:00:00.000Z";

async fn send(
    Path(_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<SendBody>,
) -> (StatusCode, Json<Sent>) {
    let verified = headers.contains_key("x-session-key") && headers.contains_key("x-agent-id");
    let _ = (body.text.as_deref().map(str::len), body.json.is_some());
    let c = CURSOR.fetch_add(1, Ordering::Relaxed) + 1;
    (
        StatusCode::CREATED,
        Json(Sent {
            id: format!("msg_{c:024x}"),
            cursor: c.to_string(),
            sent_at: SENT_AT,
            expires_at: EXPIRES_AT,
            verified,
        }),
    )
}

async fn poll(
    Path(_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Page> {
    let agent = headers
        .get("x-agent-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("agent")
        .to_owned();
    let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let limit: u64 = q.get("limit").and_then(|a| a.parse().ok()).unwrap_or(10);
    let messages: Vec<Message> = (after + 1..=after + limit)
        .map(|c| Message {
            id: format!("msg_{c:024x}"),
            agent_id: agent.clone(),
            text: super::SEND_TEXT.to_owned(),
            cursor: c.to_string(),
            verified: true,
            sent_at: SENT_AT,
            expires_at: EXPIRES_AT,
        })
        .collect();
    Json(Page {
        next_cursor: (after + limit).to_string(),
        messages,
        truncated: false,
    })
}

pub async fn serve(port: u16) -> anyhow::Result<()> {
    let app = Router::new().route("/v1/sessions/{id}/messages", post(send).get(poll));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "{}",
        serde_json::json!({"listening": format!("http://{}", listener.local_addr()?)})
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            term.recv().await;
        })
        .await?;
    Ok(())
}
