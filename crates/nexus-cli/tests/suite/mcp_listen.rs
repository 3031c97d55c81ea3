//! `nexus mcp` on the newest protocol revision (2026-07-28: no `initialize`, push through
//! `subscriptions/listen`), driven by rmcp's own client, since the Python SDK of `mcp.rs` speaks
//! only the session-based revisions. The other agent is the `nexus` CLI on its own home.

use std::process::Stdio;
use std::time::Duration;

use rmcp::ClientServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ProtocolVersion, ReadResourceRequestParams,
    ResourceContents, ServerNotification, SubscriptionFilter,
};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};

use super::harness::{Agent, Server};

/// Functional bound for one request or one awaited notification.
const BOUND: Duration = Duration::from_secs(30);

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
    tokio::time::timeout(BOUND, client.call_tool(params))
        .await
        .expect("tool call in time")
        .expect("tool call answered")
}

/// The JSON line of a result.
fn first_line(r: &CallToolResult) -> Value {
    let text = &r.content[0].as_text().expect("text").text;
    serde_json::from_str(text.lines().next().unwrap_or("")).expect("JSON first line")
}

#[test]
fn listen_pushes_updates_and_list_changes_on_the_2026_revision() {
    let server = Server::start();
    let guest = Agent::new(&server.url);
    let home = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nexus"))
            .args(["mcp", "--agent-id", "host", "--quiet"])
            .env("NEXUS_HOME", home.path())
            .env("NEXUS_URL", &server.url)
            .env_remove("NEXUS_AGENT_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn nexus mcp");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let client = tokio::time::timeout(
            BOUND,
            ().serve_with_lifecycle(
                (stdout, stdin),
                rmcp::ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            ),
        )
        .await
        .expect("discover in time")
        .expect("a 2026-07-28 session");

        // Listening for list changes first: creating a session is one.
        let mut lists = client
            .listen(
                SubscriptionFilter::builder()
                    .resources_list_changed()
                    .build(),
            )
            .await
            .expect("listen for list changes");
        let created = call(&client, "create_session", json!({"ttl": 600})).await;
        assert_eq!(created.is_error, Some(false), "{created:?}");
        let sid = first_line(&created)["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        let change = tokio::time::timeout(BOUND, lists.next())
            .await
            .expect("list change in time")
            .expect("subscription open");
        assert!(
            matches!(
                change,
                Some(ServerNotification::ResourceListChangedNotification(_))
            ),
            "{change:?}"
        );

        let link = first_line(&call(&client, "create_pairing_link", json!({"session": sid})).await);
        let url = link["url"].as_str().expect("url");
        guest.run(&["claim", url, "--agent-id", "guest"]).ok();

        // Subscribe to the transcript; a message from the CLI agent is pushed.
        let uri = format!("nexus://sessions/{sid}");
        let mut updates = client
            .listen(
                SubscriptionFilter::builder()
                    .resource_subscription(uri.clone())
                    .resource_subscription("file:///etc/passwd")
                    .build(),
            )
            .await
            .expect("listen for updates");
        assert_eq!(
            updates.acknowledged().resource_subscriptions,
            Some(vec![uri.clone()]),
            "only transcript URIs are accepted"
        );
        guest.run(&["send", &sid, "hello over listen"]).ok();
        let update = tokio::time::timeout(BOUND, updates.next())
            .await
            .expect("update in time")
            .expect("subscription open");
        match update {
            Some(ServerNotification::ResourceUpdatedNotification(n)) => {
                assert_eq!(n.params.uri, uri)
            }
            other => panic!("expected resources/updated, got {other:?}"),
        }
        let read = tokio::time::timeout(
            BOUND,
            client.read_resource(ReadResourceRequestParams::new(uri.clone())),
        )
        .await
        .expect("read in time")
        .expect("read answered");
        let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
            panic!("text contents")
        };
        assert!(text.contains("hello over listen"), "{text}");
        let key = std::fs::read_to_string(home.path().join("sessions").join(&sid).join("key"))
            .expect("host key saved");
        assert!(!text.contains(key.trim()));
        assert!(
            !home
                .path()
                .join("sessions")
                .join(&sid)
                .join("cursor")
                .exists(),
            "reading the transcript saved no cursor"
        );

        // Tool errors have the same shape on this revision.
        let err = call(&client, "poll", json!({"session": sid, "wait": 99})).await;
        assert_eq!(err.is_error, Some(true));
        assert_eq!(first_line(&err)["error"], "invalid_arguments");

        // The client goes away: the server stops its watchers and exits 0.
        drop(updates);
        drop(lists);
        let _ = client.cancel().await;
        let status = tokio::time::timeout(BOUND, child.wait())
            .await
            .expect("nexus mcp exits once its client is gone")
            .expect("exit status");
        assert!(status.success(), "{status:?}");
    });
}
