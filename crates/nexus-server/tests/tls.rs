//! Native TLS: with `TLS_CERT`/`TLS_KEY` the real binary serves HTTPS, and a client that trusts
//! the (freshly generated, self-signed) certificate completes a flow over it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn https_flow_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus-server"))
        .args(["--port", "0", "--rate-limit-per-minute", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("TLS_CERT", &cert_path)
        .env("TLS_KEY", &key_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = ready["listening"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let health: serde_json::Value = client
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let created = client
        .put(format!("{url}/v1/sessions"))
        .header("x-agent-id", "agent-a")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let sid = created["sessionId"].as_str().unwrap();
    let sent = client
        .post(format!("{url}/v1/sessions/{sid}/messages"))
        .header("x-agent-id", "agent-a")
        .header("x-session-key", created["sessionKey"].as_str().unwrap())
        .body(r#"{"text":"over TLS"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let page: serde_json::Value = client
        .get(format!("{url}/v1/sessions/{sid}/messages"))
        .header("x-agent-id", "agent-a")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"][0]["text"], "over TLS");
    assert_eq!(page["messages"][0]["verified"], true);

    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{url}/health"))
            .send()
            .await
            .is_err()
    );
    drop(server);
}
