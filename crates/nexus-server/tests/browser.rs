//! The HTML pages in a real browser (headless Debian Chromium, see `browser_support`) against the
//! real binary: the pairing page shows the code, copies it, and follows the code's state live
//! (pending → claimed after a claim from another client, pending → expired) without reloading;
//! screenshots of the pairing page and the root page, light and dark, desktop and phone, are
//! written to `target/screenshots/` for a person to look at. Without Chromium these tests fail.

mod browser_support;
#[allow(dead_code)] // not every test file uses every helper
mod harness;

use std::time::Duration;

use browser_support::{Browser, Tab, View, screenshot_dir};
use harness::{Client, Server};
use serde_json::{Value, json};

const LIVE: Duration = Duration::from_secs(15);

async fn start(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--rate-limit-per-minute", "0"];
    args.extend_from_slice(extra);
    let server = Server::start(dir.path(), &args).await;
    (server, dir)
}

/// A new session with a creator and a pending pairing code; returns the code.
async fn new_code(client: &Client) -> String {
    let created = client
        .put(
            "/v1/sessions",
            &[],
            &json!({"creatorAgentId": "alice", "greeting": "Hi! Let us plan the launch."}),
        )
        .await
        .expect(201);
    let pair = client
        .put("/v1/pair", &[], &json!({"sessionId": created["sessionId"]}))
        .await
        .expect(201);
    pair["code"].as_str().unwrap().to_owned()
}

async fn text_of(browser: &mut Browser, tab: &Tab, id: &str) -> String {
    let v = browser
        .eval(tab, &format!("document.getElementById('{id}').textContent"))
        .await;
    v.as_str().unwrap_or_default().trim().to_owned()
}

/// The page's background colour, to tell light from dark.
async fn background(browser: &mut Browser, tab: &Tab) -> String {
    browser
        .eval(tab, "getComputedStyle(document.body).backgroundColor")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

const LIGHT_BG: &str = "rgb(247, 247, 249)";
const DARK_BG: &str = "rgb(17, 18, 22)";

#[tokio::test]
async fn the_pairing_page_shows_the_code_and_turns_claimed_live() {
    let (server, _dir) = start(&[]).await;
    let client = server.client();
    let code = new_code(&client).await;
    let link = format!("http://{}/p/{code}", client.addr);
    let shots = screenshot_dir();

    let mut browser = Browser::launch().await;
    let tab = browser.tab(View::DESKTOP_LIGHT).await;
    browser.goto(&tab, &link).await;
    // The 301 was followed to the skill document, served as HTML.
    let href = browser.eval(&tab, "location.pathname").await;
    assert_eq!(href, json!(format!("/v1/pair/{code}/skill")));
    assert_eq!(text_of(&mut browser, &tab, "code").await, code);
    assert_eq!(text_of(&mut browser, &tab, "state").await, "pending");
    assert_eq!(text_of(&mut browser, &tab, "link").await, link);
    assert_eq!(background(&mut browser, &tab).await, LIGHT_BG);
    // The countdown to the code's expiry (600 s) is shown and ticks down.
    let countdown = text_of(&mut browser, &tab, "countdown").await;
    assert!(
        countdown.starts_with("Expires in 9:") || countdown == "Expires in 10:00",
        "{countdown}"
    );
    let ticking =
        format!("document.getElementById('countdown').textContent.trim() !== {countdown:?}");
    browser.wait_for(&tab, &ticking, LIVE).await;
    // One copy button per command, added by the page's script.
    let counts = browser
        .eval(
            &tab,
            "[document.querySelectorAll('.doc pre').length, \
              document.querySelectorAll('.doc pre button.copy').length]",
        )
        .await;
    assert_eq!(counts[0], counts[1], "{counts}");
    assert!(counts[0].as_u64().unwrap() >= 5, "{counts}");
    // The code's copy button works (clipboard API or its fallback).
    browser
        .eval(
            &tab,
            "document.querySelector('button[data-copy=code]').click()",
        )
        .await;
    browser
        .wait_for(
            &tab,
            "document.querySelector('button[data-copy=code]').textContent === 'Copied'",
            LIVE,
        )
        .await;
    browser
        .wait_for(
            &tab,
            "document.querySelector('button[data-copy=code]').textContent === 'Copy code'",
            LIVE,
        )
        .await;
    browser
        .screenshot(&tab, &shots.join("pair-light.png"))
        .await;

    // Another client claims the code; the open page follows without reloading.
    browser.eval(&tab, "window.__sameDocument = true").await;
    client
        .post(
            &format!("/v1/pair/{code}/claim"),
            &[("X-Agent-Id", "bob")],
            None,
        )
        .await
        .expect(200);
    browser
        .wait_for(
            &tab,
            "document.getElementById('state').textContent === 'claimed'",
            LIVE,
        )
        .await;
    assert_eq!(
        browser.eval(&tab, "window.__sameDocument === true").await,
        json!(true),
        "the page did not reload"
    );
    assert!(
        text_of(&mut browser, &tab, "state-note")
            .await
            .starts_with("Claimed")
    );
    browser
        .screenshot(&tab, &shots.join("pair-claimed-light.png"))
        .await;

    // Loading the link after the claim: a helpful page that says so.
    let again = browser.tab(View::DESKTOP_LIGHT).await;
    browser.goto(&again, &link).await;
    assert_eq!(text_of(&mut browser, &again, "state").await, "claimed");
    let body = browser.eval(&again, "document.body.innerText").await;
    assert!(
        body.as_str().unwrap().contains("new pairing link"),
        "{body}"
    );

    // Dark, desktop and phone, on a fresh pending code.
    let code = new_code(&client).await;
    let link = format!("http://{}/p/{code}", client.addr);
    for (view, name, bg) in [
        (View::DESKTOP_DARK, "pair-dark.png", DARK_BG),
        (View::PHONE_LIGHT, "pair-phone-light.png", LIGHT_BG),
        (View::PHONE_DARK, "pair-phone-dark.png", DARK_BG),
    ] {
        let tab = browser.tab(view).await;
        browser.goto(&tab, &link).await;
        assert_eq!(text_of(&mut browser, &tab, "code").await, code);
        assert_eq!(text_of(&mut browser, &tab, "state").await, "pending");
        assert_eq!(background(&mut browser, &tab).await, bg, "{name}");
        // Nothing is wider than the screen (phone layout).
        let overflow = browser
            .eval(
                &tab,
                "document.documentElement.scrollWidth <= window.innerWidth",
            )
            .await;
        assert_eq!(overflow, json!(true), "{name}: the page scrolls sideways");
        browser.screenshot(&tab, &shots.join(name)).await;
    }
    browser.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_pairing_page_turns_expired_live() {
    // The code lives a few real seconds (this is the real binary; its clock cannot be paused):
    // the browser is started first, so only the page load runs inside the code's lifetime, and
    // that lifetime is long enough for a loaded CI machine to see the page while it is pending.
    let (server, _dir) = start(&["--pair-code-ttl-seconds", "6"]).await;
    let client = server.client();
    let mut browser = Browser::launch().await;
    let tab = browser.tab(View::DESKTOP_LIGHT).await;
    let code = new_code(&client).await;
    browser
        .goto(&tab, &format!("http://{}/p/{code}", client.addr))
        .await;
    assert_eq!(text_of(&mut browser, &tab, "state").await, "pending");
    browser.eval(&tab, "window.__sameDocument = true").await;
    browser
        .wait_for(
            &tab,
            "document.getElementById('state').textContent === 'expired'",
            LIVE,
        )
        .await;
    assert_eq!(
        browser.eval(&tab, "window.__sameDocument === true").await,
        json!(true)
    );
    browser
        .screenshot(&tab, &screenshot_dir().join("pair-expired-light.png"))
        .await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_root_page_renders_light_and_dark() {
    let (server, _dir) = start(&[]).await;
    let client = server.client();
    let root = format!("http://{}/", client.addr);
    let shots = screenshot_dir();
    let mut browser = Browser::launch().await;
    for (view, name, bg) in [
        (View::DESKTOP_LIGHT, "root-light.png", LIGHT_BG),
        (View::DESKTOP_DARK, "root-dark.png", DARK_BG),
        (View::PHONE_LIGHT, "root-phone-light.png", LIGHT_BG),
    ] {
        let tab = browser.tab(view).await;
        browser.goto(&tab, &root).await;
        let h1: Value = browser
            .eval(&tab, "document.querySelector('h1').textContent")
            .await;
        assert_eq!(h1, json!("NexusMessaging relay"));
        assert_eq!(background(&mut browser, &tab).await, bg, "{name}");
        let counts = browser
            .eval(
                &tab,
                "[document.querySelectorAll('.doc pre').length, \
                  document.querySelectorAll('.doc pre button.copy').length, \
                  document.querySelectorAll('table').length]",
            )
            .await;
        assert_eq!(counts[0], counts[1], "{counts}");
        assert!(counts[0].as_u64().unwrap() >= 13, "{counts}");
        assert!(counts[2].as_u64().unwrap() >= 3, "tables render: {counts}");
        assert_eq!(
            browser.eval(&tab, "document.getElementById('pair')").await,
            Value::Null,
            "no pairing card on the root page"
        );
        let overflow = browser
            .eval(
                &tab,
                "document.documentElement.scrollWidth <= window.innerWidth",
            )
            .await;
        assert_eq!(overflow, json!(true), "{name}: the page scrolls sideways");
        browser.screenshot(&tab, &shots.join(name)).await;
    }
    browser.close().await;
    server.stop().await;
}
