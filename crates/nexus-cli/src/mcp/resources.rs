//! Session transcripts as MCP resources (issue 8): `nexus://sessions/<id>` for every session in the
//! local state that has an agent (joined, claimed or created with a creator).
//!
//! Listing reads only local files (no request per session). Reading fetches what the relay holds
//! through [`super::history::recent`], which never moves the saved cursor, and returns one JSON
//! document: `{"sessionId", "alias", "agentId", "messages": [...], "held", "truncated",
//! "incomplete"}` with the
//! last [`TRANSCRIPT_LIMIT`] messages in the compact shape of the tools. The canonical URI names
//! the session id; an alias in place of the id is accepted when it is URI-safe.

use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use serde_json::json;

use super::context::Shared;
use super::errors::ToolError;
use super::history::recent;
use super::results::compact_message;
use crate::state::{SessionFile, Sid};

/// The URI scheme and authority of transcripts.
pub const PREFIX: &str = "nexus://sessions/";
/// The MIME type of a transcript.
pub const MIME: &str = "application/json";
/// The most messages a transcript shows (the newest ones).
pub const TRANSCRIPT_LIMIT: usize = 1000;

/// The URI of a session's transcript.
pub fn uri(sid: &Sid) -> String {
    format!("{PREFIX}{sid}")
}

/// The session argument (id or alias) a transcript URI names.
pub fn parse_uri(uri: &str) -> Result<&str, ToolError> {
    let rest = uri.strip_prefix(PREFIX).ok_or_else(|| {
        ToolError::invalid_arguments(format!("not a nexus transcript URI: {uri}")).with_hint(
            "Transcript URIs look like nexus://sessions/<sessionId>; resources/list shows them.",
        )
    })?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#']) {
        return Err(
            ToolError::invalid_arguments(format!("not a nexus transcript URI: {uri}"))
                .with_hint("Transcript URIs look like nexus://sessions/<sessionId>; resources/list shows them."),
        );
    }
    Ok(rest)
}

/// Every local session with an agent, as a resource.
pub fn list(shared: &Shared) -> Vec<Resource> {
    let home = &shared.home;
    home.sessions()
        .into_iter()
        .filter_map(|sid| {
            let agent = home.read(&sid, SessionFile::Agent)?;
            let alias = home.alias_of(&sid);
            let short: String = sid.as_str().chars().take(8).collect();
            let title = match &alias {
                Some(a) => format!("nexus session {a} ({short}…)"),
                None => format!("nexus session {short}…"),
            };
            Some(
                Resource::new(uri(&sid), alias.clone().unwrap_or_else(|| sid.to_string()))
                    .with_title(title)
                    .with_description(format!(
                        "Messages the relay still holds in this session (you are {agent}); subscribe to be told when new ones arrive."
                    ))
                    .with_mime_type(MIME),
            )
        })
        .collect()
}

/// The template for transcripts of any session this agent belongs to.
pub fn template() -> ResourceTemplate {
    ResourceTemplate::new(format!("{PREFIX}{{session}}"), "session-transcript")
        .with_title("nexus session transcript")
        .with_description(
            "Messages a NexusMessaging session still holds; {session} is a session id or a local alias.",
        )
        .with_mime_type(MIME)
}

/// Reads one transcript.
pub async fn read(shared: &Shared, uri: &str) -> Result<ResourceContents, ToolError> {
    let input = parse_uri(uri)?;
    let (ctx, s) = shared.session(input)?;
    let got = recent(&ctx, &s, TRANSCRIPT_LIMIT)
        .await
        .map_err(|f| ToolError::from_failure(&f))?;
    let doc = json!({
        "sessionId": s.sid.as_str(),
        "alias": shared.home.alias_of(&s.sid),
        "agentId": s.agent,
        "messages": got.messages.iter().map(compact_message).collect::<Vec<_>>(),
        "held": got.held,
        "truncated": got.truncated,
        "incomplete": got.incomplete,
    });
    Ok(ResourceContents::text(doc.to_string(), uri).with_mime_type(MIME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Home;

    #[test]
    fn uris_round_trip_and_reject_garbage() {
        let sid = Sid::parse("0123abcd").unwrap();
        assert_eq!(uri(&sid), "nexus://sessions/0123abcd");
        assert_eq!(parse_uri(&uri(&sid)).unwrap(), "0123abcd");
        assert_eq!(parse_uri("nexus://sessions/review/").unwrap(), "review");
        for bad in [
            "nexus://sessions/",
            "nexus://sessions/a/b",
            "nexus://sessions/a?x=1",
            "file:///etc/passwd",
            "nexus://other/abc",
        ] {
            let e = parse_uri(bad).unwrap_err();
            assert_eq!(e.code, "invalid_arguments", "{bad}");
            assert!(e.hint.contains("nexus://sessions/"));
        }
    }

    #[test]
    fn only_sessions_with_an_agent_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::for_tests(Home::at(dir.path().to_path_buf()), None, None);
        let home = &shared.home;
        let joined = Sid::parse("aaaa1111").unwrap();
        let bound_only = Sid::parse("bbbb2222").unwrap();
        home.create_session_dir(&joined).unwrap();
        home.write(&joined, SessionFile::Agent, "bob").unwrap();
        home.create_session_dir(&bound_only).unwrap();
        let mut aliases = std::collections::BTreeMap::new();
        aliases.insert("review".to_owned(), "aaaa1111".to_owned());
        home.save_aliases(&aliases).unwrap();
        let list = list(&shared);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].uri, "nexus://sessions/aaaa1111");
        assert_eq!(list[0].name, "review");
        assert_eq!(list[0].mime_type.as_deref(), Some(MIME));
        assert!(list[0].description.as_deref().unwrap().contains("bob"));
    }
}
