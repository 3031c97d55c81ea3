//! The HTML form of a skill document: the markdown rendered by pulldown-cmark into one
//! self-contained page (`page.css` and `page.js` inlined; no external fonts, scripts or images),
//! readable on a phone and a desktop, light and dark. A pairing page adds a header card above the
//! document: the code, large, with a copy button, its state (refreshed live from
//! `/v1/pair/:code/status`), a countdown when the expiry is known, and the link with a copy button.
//! `page.js` adds a copy button to every command.

use nexus_proto::time::Millis;
use pulldown_cmark::{Event, Options, Parser, html};

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Sent with every HTML page: the browser itself refuses anything from another host.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// What the pairing card shows.
pub struct Pairing {
    code: String,
    state: &'static str,
    link: String,
    expires_at: Option<Millis>,
    now: Millis,
}

impl Pairing {
    pub fn new(
        base: &str,
        code: &str,
        state: &'static str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Self {
        Pairing {
            code: code.to_owned(),
            state,
            link: format!("{base}/p/{code}"),
            expires_at,
            now,
        }
    }

    fn note(&self) -> &'static str {
        match self.state {
            "pending" => "Waiting for an agent to claim it.",
            "claimed" => {
                "Claimed: the invited agent has joined the session. The code cannot be used again."
            }
            "expired" => "Expired: nobody claimed it in time. Ask for a new link.",
            _ => "This relay does not know this code. Ask for a new link.",
        }
    }

    fn card(&self) -> String {
        let code = escape(&self.code);
        let link = escape(&self.link);
        let expires = self.expires_at.map(|e| e.to_string()).unwrap_or_default();
        let hint = match self.state {
            "pending" => {
                "Give this link to your AI agent (paste it into its chat). It explains everything \
the agent needs; the agent claims the code and the conversation begins. The code works once."
            }
            "claimed" => {
                "The agents are connected. If an agent still needs to join, ask for a new link."
            }
            _ => "Ask whoever sent you this link for a new one.",
        };
        format!(
            "<section class=\"pair\" id=\"pair\" data-code=\"{code}\" data-state=\"{state}\" \
data-status=\"/v1/pair/{code}/status\" data-expires=\"{expires}\" data-now=\"{now}\">\
<p class=\"eyebrow\">Pairing code</p>\
<div class=\"code-line\"><code class=\"big-code\" id=\"code\">{code}</code>\
<button class=\"copy\" type=\"button\" data-copy=\"code\">Copy code</button></div>\
<p class=\"status-line\"><span class=\"badge\" id=\"state\" data-state=\"{state}\">{state}</span> \
<span id=\"state-note\">{note}</span></p>\
<p class=\"countdown\" id=\"countdown\" aria-live=\"polite\"></p>\
<div class=\"link-line\"><code id=\"link\">{link}</code>\
<button class=\"copy\" type=\"button\" data-copy=\"link\">Copy link</button></div>\
<p class=\"hint\" id=\"hint\">{hint}</p></section>",
            state = self.state,
            now = self.now,
            note = self.note(),
        )
    }
}

/// The whole page for one markdown document.
pub fn render(base: &str, markdown: &str, pairing: Option<&Pairing>) -> String {
    let title = markdown
        .lines()
        .next()
        .unwrap_or("NexusMessaging")
        .trim_start_matches('#')
        .trim();
    // Raw HTML in the markdown (there is none in the sources; a PUBLIC_URL could carry some) is
    // shown as text, never interpreted.
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut body = String::new();
    html::push_html(&mut body, events);
    let card = pairing.map(Pairing::card).unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style>{CSS}</style></head>\
<body><header class=\"top\"><a class=\"brand\" href=\"/\">NexusMessaging relay</a>\
<span class=\"host\">{host}</span></header>\
<main>{card}<article class=\"doc\">{body}</article></main>\
<footer>This page is the HTML form of a markdown document: agents get the markdown from the same \
address (any request without <code>Accept: text/html</code>).</footer>\
<script>{JS}</script></body></html>\n",
        title = escape(title),
        host = escape(base),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_markdown_is_text() {
        let page = render("http://x", "# T <b>\n\n<script>alert(1)</script>\n", None);
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)"));
        assert!(page.contains("<title>T &lt;b&gt;</title>"));
    }

    #[test]
    fn the_card_shows_the_code_state_and_link() {
        let p = Pairing::new("http://x", "ABLE-BAKER-12345", "pending", Some(5), 1);
        let page = render("http://x", "# T\n", Some(&p));
        assert!(page.contains("id=\"code\">ABLE-BAKER-12345</code>"));
        assert!(page.contains("data-state=\"pending\">pending</span>"));
        assert!(page.contains("data-expires=\"5\" data-now=\"1\""));
        assert!(page.contains("<code id=\"link\">http://x/p/ABLE-BAKER-12345</code>"));
    }
}
