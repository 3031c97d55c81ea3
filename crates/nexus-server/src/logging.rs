//! Logging to stderr, kept off the request path: lines are formatted by `tracing-subscriber`'s
//! full format (the `LOG` filter decides what is written), collected in memory and written by one
//! background thread in batches, so a request never waits for a `write(2)`. The access line of
//! every request (`nexus::access`, written by `http::observe`) has its own formatter that
//! writes the same line as the full format without going through `core::fmt` for each piece.
//!
//! What is logged is decided elsewhere (SPEC §2 "Logs": route templates, never ids, keys, codes or
//! message content); this module only decides how lines reach stderr. Lines are at most
//! [`FLUSH_DELAY`] late; [`LogGuard`] writes whatever is left when it is dropped (at exit).

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nexus_proto::time::rfc3339_micros;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Target of the one-line-per-request access log.
pub const ACCESS_TARGET: &str = "nexus::access";

/// Longest time a line waits in memory before it is written.
pub const FLUSH_DELAY: Duration = Duration::from_millis(50);

/// Past this many buffered bytes the logging thread writes them itself (back-pressure when
/// stderr is slower than the log).
const MAX_PENDING: usize = 1 << 20;

/// Installs the global subscriber: `filter` decides what is logged, ANSI colours only when asked.
/// Keep the guard alive until exit: dropping it writes what is still buffered.
pub fn init(filter: EnvFilter, ansi: bool) -> LogGuard {
    let (writer, guard) = LineBuffer::spawn(Box::new(io::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .event_format(AccessFast::default())
        .init();
    guard
}

// ---------------------------------------------------------------------------------------------
// Time

/// UTC timestamps with microseconds (`2026-11-25T10:00:00.123456Z`, as `tracing-subscriber`'s
/// default timer writes them), formatted without `core::fmt`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let buf = rfc3339_micros(micros);
        w.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Format

/// The full format (`<time> <LEVEL> <target>: <fields>`), with a fast path for access lines
/// that writes the same bytes. Everything else — other targets, events inside spans, ANSI
/// colours — goes through `tracing-subscriber`'s own formatter.
#[derive(Debug)]
pub struct AccessFast {
    full: Format<Full, UtcMicros>,
}

impl Default for AccessFast {
    fn default() -> Self {
        Self {
            full: Format::default().with_timer(UtcMicros),
        }
    }
}

impl<S, N> FormatEvent<S, N> for AccessFast
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != ACCESS_TARGET
            || writer.has_ansi_escapes()
            || ctx.event_scope().is_some()
        {
            return self.full.format_event(ctx, writer, event);
        }
        if UtcMicros.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = PlainFields {
            writer: writer.by_ref(),
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes `name=value` pairs separated by spaces, as the default field formatter does without
/// ANSI colours (strings quoted, `%display` values bare), integers without `core::fmt`.
struct PlainFields<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl PlainFields<'_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        let name = field.name();
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')
    }

    fn record(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self
                .name(field)
                .and_then(|()| value(&mut self.writer.by_ref()));
        }
    }
}

impl Visit for PlainFields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, |w| write!(w, "{value:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

struct Pending {
    bytes: Vec<u8>,
    /// The writer thread sleeps until a line arrives; only then does a line need to wake it.
    idle: bool,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing, so batches reach the output in the order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Writes everything buffered so far.
    fn drain(&self) -> io::Result<()> {
        let mut out = lock(&self.out);
        let batch = std::mem::take(&mut lock(&self.pending).bytes);
        if batch.is_empty() {
            return Ok(());
        }
        out.write_all(&batch)?;
        out.flush()
    }

    fn run(&self) {
        loop {
            let closed = {
                let mut p = lock(&self.pending);
                while p.bytes.is_empty() && !p.closed {
                    p.idle = true;
                    p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                p.idle = false;
                p.closed
            };
            if !closed {
                // Let more lines join this batch.
                std::thread::sleep(FLUSH_DELAY);
            }
            // Nowhere to report a failed write to stderr; the next batch tries again.
            let _ = self.drain();
            if closed {
                return;
            }
        }
    }
}

/// A [`MakeWriter`] that appends whole lines to a shared buffer written out by a background
/// thread.
#[derive(Clone)]
pub struct LineBuffer {
    shared: Arc<Shared>,
}

impl LineBuffer {
    /// Starts the writer thread over `out`. Without a thread (it could not be spawned), lines are
    /// written by the logging thread itself, as an unbuffered writer would.
    pub fn spawn(out: Box<dyn Write + Send>) -> (LineBuffer, LogGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(64 * 1024),
                idle: false,
                closed: false,
            }),
            wake: Condvar::new(),
            out: Mutex::new(out),
        });
        let runner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nexus-log".into())
            .spawn(move || runner.run())
            .ok();
        if thread.is_none() {
            lock(&shared.pending).closed = true;
        }
        let guard = LogGuard {
            shared: shared.clone(),
            thread,
        };
        (LineBuffer { shared }, guard)
    }
}

impl<'a> MakeWriter<'a> for LineBuffer {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.shared)
    }
}

/// One event's writer: `tracing-subscriber` hands it the whole formatted line at once.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut p = lock(&self.0.pending);
        p.bytes.extend_from_slice(line);
        if p.closed || p.bytes.len() >= MAX_PENDING {
            drop(p);
            self.0.drain()?;
        } else if p.idle {
            p.idle = false;
            drop(p);
            self.0.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps the writer thread; dropping it writes every buffered line and stops the thread.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = self.shared.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::format::FmtSpan;

    /// An output the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    fn access_event() {
        let route = "/v1/sessions/{id}/messages";
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = %"0123456789abcdef",
            method = %"POST",
            route = %route,
            status = 201u16,
            latency_us = 512u64,
        );
    }

    /// Lines without their timestamp (the first 27 bytes).
    fn untimed(text: &str) -> Vec<String> {
        text.lines().map(|l| l[27..].to_owned()).collect()
    }

    #[test]
    fn access_lines_are_the_full_format_lines() {
        let fast = Captured::default();
        let (writer, guard) = LineBuffer::spawn(Box::new(fast.clone()));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .event_format(AccessFast::default())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            access_event();
            tracing::warn!(target: "nexus::other", answer = 42, "a message");
        });
        drop(guard);

        let full = Captured::default();
        let out = full.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_span_events(FmtSpan::NONE)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            access_event();
            tracing::warn!(target: "nexus::other", answer = 42, "a message");
        });

        let (fast, full) = (fast.text(), full.text());
        assert_eq!(untimed(&fast), untimed(&full), "{fast}\n{full}");
        assert_eq!(
            untimed(&fast)[0],
            "  INFO nexus::access: request_id=0123456789abcdef method=POST \
             route=/v1/sessions/{id}/messages status=201 latency_us=512"
        );
        let stamp = &fast[..27];
        assert!(
            stamp.starts_with("20") && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
    }

    #[test]
    fn buffered_lines_keep_their_order_and_are_all_written_at_the_end() {
        let out = Captured::default();
        let (writer, guard) = LineBuffer::spawn(Box::new(out.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let line = format!("thread {t} line {i}\n");
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = out.text();
        assert_eq!(text.lines().count(), 2000);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..500).collect::<Vec<_>>());
        }
    }
}
