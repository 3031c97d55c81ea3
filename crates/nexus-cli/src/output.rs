//! Output discipline (SPEC §3 "Conventions"): stdout carries exactly one JSON value per command
//! (daemons: one JSON object per line), stderr carries human lines, `--quiet` silences stderr.
//!
//! Every failure is a [`Failure`]: a JSON body printed on stdout followed by exit status 1. Server
//! error bodies are passed through verbatim; the CLI's own errors are built with serde so they are
//! always valid JSON (the bash client interpolated strings and printed some errors on stderr).

use std::io::Write;

use serde_json::{Value, json};

/// A command that failed: what to print on stdout (always JSON) before exiting with status 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The exact JSON text for stdout.
    pub stdout: String,
    /// The server's `Retry-After`, in seconds, when it sent one (daemons wait at least that long).
    pub retry_after: Option<u64>,
}

impl Failure {
    /// `{"error": text}`: the shape of the bash client's own errors (kept for compatibility).
    pub fn msg(text: impl Into<String>) -> Self {
        Self::from_value(&json!({ "error": text.into() }))
    }

    /// `{"error": code, "message": message}`: errors that are new in `nexus`.
    pub fn coded(code: &str, message: impl Into<String>) -> Self {
        Self::from_value(&json!({ "error": code, "message": message.into() }))
    }

    /// A transport failure (refused, timed out, DNS, TLS): no HTTP reply at all.
    pub fn transport(message: impl Into<String>) -> Self {
        Self::coded("transport_error", message)
    }

    /// A reply whose body is not a JSON object (a proxy's HTML page, an empty body).
    pub fn non_json() -> Self {
        Self::from_value(&json!({ "error": "non_json_response" }))
    }

    /// A JSON error body from the server, passed through verbatim.
    pub fn passthrough(raw: &str) -> Self {
        Self {
            stdout: raw.trim().to_owned(),
            retry_after: None,
        }
    }

    /// Local disk trouble (permissions, full disk) while reading or writing state.
    pub fn io(what: &str, err: &std::io::Error) -> Self {
        Self::coded("local_state_error", format!("{what}: {err}"))
    }

    pub fn from_value(v: &Value) -> Self {
        Self {
            stdout: v.to_string(),
            retry_after: None,
        }
    }

    /// The `error` code of the body, when it is a JSON object with one.
    pub fn code(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.stdout)
            .ok()?
            .get("error")?
            .as_str()
            .map(str::to_owned)
    }
}

/// What a successful (or deliberately non-zero, like `doctor`) command prints on stdout.
#[derive(Debug, Clone, PartialEq)]
pub enum Printed {
    /// A server body, verbatim (it was checked to be a JSON object).
    Raw(String),
    /// A value built by the CLI, compact.
    Compact(Value),
    /// A value built by the CLI, pretty (config, bind and doctor, as in `nexus.sh`).
    Pretty(Value),
    /// Already printed (daemons) or nothing to print.
    Nothing,
}

/// A finished command: what to print and the exit status.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub printed: Printed,
    pub exit: u8,
}

impl Outcome {
    pub fn raw(raw: impl Into<String>) -> Self {
        Self {
            printed: Printed::Raw(raw.into()),
            exit: 0,
        }
    }
    pub fn compact(v: Value) -> Self {
        Self {
            printed: Printed::Compact(v),
            exit: 0,
        }
    }
    pub fn pretty(v: Value) -> Self {
        Self {
            printed: Printed::Pretty(v),
            exit: 0,
        }
    }
    pub fn nothing() -> Self {
        Self {
            printed: Printed::Nothing,
            exit: 0,
        }
    }
    pub fn with_exit(mut self, exit: u8) -> Self {
        self.exit = exit;
        self
    }
}

/// The result of every command.
pub type CmdResult = Result<Outcome, Failure>;

/// Writes one line on stdout and flushes. A closed pipe is reported, never a panic.
pub fn stdout_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Prints an outcome's stdout part (the caller exits afterwards).
pub fn emit(printed: &Printed) {
    let text = match printed {
        Printed::Raw(s) => s.trim().to_owned(),
        Printed::Compact(v) => v.to_string(),
        Printed::Pretty(v) => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
        Printed::Nothing => return,
    };
    // A broken pipe is a quiet exit, as in ripgrep.
    let _ = stdout_line(&text);
}

/// The human channel: stderr, silenced by `--quiet`.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub quiet: bool,
}

impl Ui {
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", text.as_ref());
        }
    }

    /// An empty line followed by `text` (the bash client's style for result notes).
    pub fn note(&self, text: impl AsRef<str>) {
        self.line("");
        self.line(text);
    }
}

/// The first 12 characters of a session id followed by an ellipsis, as in every warning.
pub fn short(sid: &str) -> String {
    sid.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_valid_json_even_with_hostile_text() {
        let f = Failure::msg("alias not found: \"x\"\n{");
        let v: Value = serde_json::from_str(&f.stdout).unwrap();
        assert_eq!(v["error"], "alias not found: \"x\"\n{");
        assert_eq!(
            Failure::non_json().stdout,
            r#"{"error":"non_json_response"}"#
        );
        assert_eq!(
            Failure::transport("refused").code().as_deref(),
            Some("transport_error")
        );
        assert_eq!(
            Failure::passthrough(" {\"error\":\"session_not_found\"}\n").stdout,
            r#"{"error":"session_not_found"}"#
        );
    }
}
