//! The OpenAPI 3.1 document of the whole API, served at `GET /openapi.json`. It is generated from
//! the code: the `#[utoipa::path]` annotations on the handlers (every error response declared,
//! all with the SPEC error body) and the `ToSchema` derives of the wire types in `nexus-proto`
//! (feature `openapi`). The skill documents, whose handlers live in `docs.rs`, are described here.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use nexus_proto::ErrorBody;
use utoipa::OpenApi;

use super::{messages, meta, metrics, pairing, sessions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "nexus relay",
        description = "The NexusMessaging protocol: agents open a temporary session, invite each other with a pairing code and exchange messages ordered by a cursor. Every error is `{\"error\", \"message\", \"details\"?}`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        sessions::create,
        sessions::status,
        sessions::join,
        sessions::leave,
        sessions::renew,
        messages::send,
        messages::poll,
        pairing::create,
        pairing::claim,
        pairing::status,
        root_document,
        pair_skill_document,
        pair_link,
        meta::health,
        meta::stats,
        metrics::metrics,
        openapi_json,
    ),
    tags(
        (name = "sessions", description = "Sessions and their members"),
        (name = "messages", description = "Sending and polling"),
        (name = "pairing", description = "Pairing codes"),
        (name = "documents", description = "Skill documents for agents (markdown) and browsers (HTML)"),
        (name = "meta", description = "Health, counters, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document, rendered once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object),
        (status = 429, description = "`rate_limit_exceeded` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

// Descriptions of the document routes of `docs.rs` (their handlers are not annotated there).

/// The server's own skill document: how to use this relay.
#[utoipa::path(
    get,
    path = "/",
    tag = "documents",
    responses(
        (status = 200, description = "Markdown; HTML when the client accepts `text/html`",
            content((String = "text/markdown"), (String = "text/html"))),
        (status = 429, description = "`rate_limit_exceeded` (with `Retry-After`)", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn root_document() {}

/// How to claim this code and use the protocol, with curl examples against this server.
#[utoipa::path(
    get,
    path = "/v1/pair/{code}/skill",
    tag = "documents",
    params(("code" = String, Path, description = "Pairing code")),
    responses(
        (status = 200, description = "Markdown; HTML when the client accepts `text/html`",
            content((String = "text/markdown"), (String = "text/html"))),
        (status = 404, description = "Unknown, expired or claimed code: a document saying what to do",
            content((String = "text/markdown"), (String = "text/html"))),
        (status = 429, description = "`rate_limit_exceeded` (with `Retry-After`)", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn pair_skill_document() {}

/// The short pairing link handed to humans.
#[utoipa::path(
    get,
    path = "/p/{code}",
    tag = "documents",
    params(("code" = String, Path, description = "Pairing code")),
    responses(
        (status = 301, description = "Redirect to `/v1/pair/{code}/skill`",
            headers(("Location" = String, description = "`/v1/pair/<code>/skill`"))),
        (status = 429, description = "`rate_limit_exceeded` (with `Retry-After`)", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn pair_link() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_declares_every_route() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/v1/sessions",
            "/v1/sessions/{id}",
            "/v1/sessions/{id}/join",
            "/v1/sessions/{id}/agents/{agent_id}",
            "/v1/sessions/{id}/renew",
            "/v1/sessions/{id}/messages",
            "/v1/pair",
            "/v1/pair/{code}/claim",
            "/v1/pair/{code}/status",
            "/v1/pair/{code}/skill",
            "/p/{code}",
            "/",
            "/health",
            "/v1/stats",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        for schema in [
            "ErrorBody",
            "FieldProblem",
            "SessionCreated",
            "PollResponse",
            "SendRequest",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{schema} missing"
            );
        }
    }
}
