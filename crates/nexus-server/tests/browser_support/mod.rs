//! Headless Chromium driven over the DevTools protocol (`--remote-debugging-pipe`: JSON messages
//! separated by NUL bytes on the browser's file descriptors 3 and 4, here mapped to its stdin and
//! stdout), so the browser tests need no driver binary and no websocket client. Chromium comes
//! from Debian's `chromium` package (`.ci/run` installs it); `CHROMIUM` overrides the path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the screenshots go: `target/screenshots/` (the Cargo target directory of this build).
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Page size and colour scheme.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub width: u32,
    pub height: u32,
    pub mobile: bool,
    pub dark: bool,
}

impl View {
    pub const DESKTOP_LIGHT: View = View {
        width: 1280,
        height: 900,
        mobile: false,
        dark: false,
    };
    pub const DESKTOP_DARK: View = View {
        dark: true,
        ..View::DESKTOP_LIGHT
    };
    pub const PHONE_LIGHT: View = View {
        width: 390,
        height: 844,
        mobile: true,
        dark: false,
    };
    pub const PHONE_DARK: View = View {
        dark: true,
        ..View::PHONE_LIGHT
    };
}

/// A running headless Chromium. Dropping it kills the process.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    incoming: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// One tab, attached with a flat session.
#[derive(Clone, Debug)]
pub struct Tab {
    session: String,
    view: View,
}

impl Browser {
    /// Starts Chromium with the flags this machine needs and a fresh profile. Fails the test (never
    /// skips it) when Chromium is not installed.
    pub async fn launch() -> Browser {
        let path = std::env::var("CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned());
        assert!(
            Path::new(&path).exists(),
            "Chromium is not installed at {path}: the browser tests need Debian's `chromium` \
             package (`apt-get install -y chromium`; .ci/run installs it), or CHROMIUM=/path/to/it"
        );
        let profile = tempfile::tempdir().expect("profile dir");
        // fd 3 is what the browser reads, fd 4 what it writes: our pipes to its stdin/stdout.
        let script = r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(&path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {path}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match out.read_until(0, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            stdin,
            incoming,
            next_id: 0,
            _profile: profile,
        };
        let version = browser.call(None, "Browser.getVersion", json!({})).await;
        assert!(version["product"].is_string(), "{version}");
        browser
    }

    /// Sends one command and waits for its answer (events in between are dropped).
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.stdin
            .write_all(&bytes)
            .await
            .expect("write to Chromium");
        self.stdin.flush().await.unwrap();
        let wait = async {
            loop {
                let Some(v) = self.incoming.recv().await else {
                    panic!("Chromium exited during {method}");
                };
                if v["id"] == json!(id) {
                    return v;
                }
            }
        };
        let v = tokio::time::timeout(CALL_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| panic!("Chromium did not answer {method} within {CALL_TIMEOUT:?}"));
        if let Some(e) = v.get("error") {
            panic!("{method}: {e}");
        }
        v["result"].clone()
    }

    /// A new tab with this size and colour scheme.
    pub async fn tab(&mut self, view: View) -> Tab {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        let s = Some(session.as_str());
        self.call(s, "Page.enable", json!({})).await;
        self.call(s, "Runtime.enable", json!({})).await;
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": view.width, "height": view.height, "deviceScaleFactor": 1,
                   "mobile": view.mobile}),
        )
        .await;
        let scheme = if view.dark { "dark" } else { "light" };
        self.call(
            s,
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
        Tab { session, view }
    }

    /// Loads `url` in `tab` and waits until the document and its scripts have run.
    pub async fn goto(&mut self, tab: &Tab, url: &str) {
        let nav = self
            .call(Some(&tab.session), "Page.navigate", json!({"url": url}))
            .await;
        assert!(nav.get("errorText").is_none(), "navigate {url}: {nav}");
        self.wait_for(
            tab,
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        )
        .await;
    }

    /// Evaluates `expression` in the page; returns its value (promises are awaited).
    pub async fn eval(&mut self, tab: &Tab, expression: &str) -> Value {
        let r = self
            .call(
                Some(&tab.session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is true, at most `limit`.
    pub async fn wait_for(&mut self, tab: &Tab, condition: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.eval(tab, condition).await == json!(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{condition}` still false after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the whole page (not only the viewport), written to `path`.
    pub async fn screenshot(&mut self, tab: &Tab, path: &Path) {
        let height = self
            .eval(tab, "document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(u64::from(tab.view.height))
            .max(u64::from(tab.view.height));
        let shot = self
            .call(
                Some(&tab.session),
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": tab.view.width, "height": height,
                                "scale": 1}}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Closes the browser and waits for it.
    pub async fn close(mut self) {
        self.next_id += 1;
        let msg = json!({"id": self.next_id, "method": "Browser.close", "params": {}});
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        let _ = self.stdin.write_all(&bytes).await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
    }
}
