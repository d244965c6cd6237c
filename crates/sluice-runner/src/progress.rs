//! `read`'s live progress display on stderr: one line per stream and a total, redrawn a few
//! times a second from the engine's [`ReadProgress`] counters, then a summary table.
//!
//! stdout carries Airbyte messages only, so the display never touches it. It is drawn by
//! `indicatif` on its own thread, which only reads atomic counters: the read itself does not
//! wait for it.

use crate::text::clip;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use sluice_engine::{ReadProgress, StreamPhase, StreamSnapshot};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `read --progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// When stderr is a terminal and stdout is not (never on the platform, in pipes or in CI;
    /// nor when the messages scroll on the same screen, which would tear the display).
    Auto,
    Never,
    /// Even when stderr is not a terminal (with the terminal's escape codes).
    Always,
}

impl When {
    /// Whether to show the display.
    pub fn enabled(self) -> bool {
        match self {
            When::Auto => {
                std::io::stderr().is_terminal()
                    && !std::io::stdout().is_terminal()
                    && !dumb_terminal()
            }
            When::Never => false,
            When::Always => true,
        }
    }
}

/// A terminal that cannot move its cursor.
fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|term| term == "dumb")
}

/// How often the display is redrawn.
const REFRESH: Duration = Duration::from_millis(250);

/// Records per second are measured over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// The display, drawing until [`Display::finish`].
#[derive(Debug)]
pub struct Display {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Starts drawing `progress` to stderr on a thread of its own. `None` when no thread can be
    /// had: the read goes on without a display.
    pub fn start(progress: Arc<ReadProgress>) -> Option<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("progress".to_owned())
            .spawn(move || draw_until_stopped(&progress, &stopped))
            .ok()?;
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Clears the live lines and prints the summary table.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn draw_until_stopped(progress: &ReadProgress, stopped: &mpsc::Receiver<()>) {
    let started = Instant::now();
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(8)
    } else {
        // `--progress always` into a pipe or file: indicatif draws only to terminals by
        // itself, so it is handed stderr as one.
        ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 8)
    };
    // One bar whose message holds every line, so each frame shows one moment: separate bars
    // are redrawn one at a time under indicatif's rate limit, and a frame could mix moments.
    let display = ProgressBar::with_draw_target(None, target).with_style(
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rates = Rates::default();
    let mut frame = 0usize;
    loop {
        let now = Instant::now();
        let streams = progress.snapshot();
        let width = name_width(&streams);
        let mut lines = Vec::with_capacity(streams.len() + 1);
        for (index, stream) in streams.iter().enumerate() {
            let rate = rates.per_second(index, stream.records, now);
            lines.push(stream_line(stream, width, rate, frame));
        }
        let sum = totals(&streams, started.elapsed());
        let rate = rates.per_second(usize::MAX, sum.records, now);
        lines.push(stream_line(&sum, width, rate, frame));
        display.set_message(lines.join("\n"));
        frame += 1;
        match stopped.recv_timeout(REFRESH) {
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    display.finish_and_clear();
    let streams = progress.snapshot();
    let table = summary(&streams, started.elapsed());
    // Nothing to do if stderr is gone.
    let _ = std::io::stderr().lock().write_all(table.as_bytes());
}

/// Records per second over the last [`RATE_WINDOW`], per line.
#[derive(Debug, Default)]
struct Rates {
    seen: std::collections::HashMap<usize, VecDeque<(Instant, u64)>>,
}

impl Rates {
    fn per_second(&mut self, line: usize, records: u64, now: Instant) -> f64 {
        let seen = self.seen.entry(line).or_default();
        seen.push_back((now, records));
        while seen.len() > 2 && now.duration_since(seen[0].0) > RATE_WINDOW {
            seen.pop_front();
        }
        let (then, before) = seen[0];
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        records.saturating_sub(before) as f64 / seconds
    }
}

/// The streams added up, as one line named "total".
fn totals(streams: &[StreamSnapshot], elapsed: Duration) -> StreamSnapshot {
    let mut sum = StreamSnapshot {
        name: "total".to_owned(),
        phase: overall_phase(streams),
        records: 0,
        requests: 0,
        slices_done: 0,
        slices_known: 0,
        all_slices_known: true,
        retries: 0,
        rate_limit_waits: 0,
        waited: Duration::ZERO,
        elapsed,
    };
    for s in streams {
        sum.records += s.records;
        sum.requests += s.requests;
        sum.slices_done += s.slices_done;
        sum.slices_known += s.slices_known;
        sum.all_slices_known &= s.all_slices_known || s.phase == StreamPhase::Failed;
        sum.retries += s.retries;
        sum.rate_limit_waits += s.rate_limit_waits;
        sum.waited += s.waited;
    }
    sum
}

fn overall_phase(streams: &[StreamSnapshot]) -> StreamPhase {
    let phases = || streams.iter().map(|s| s.phase);
    // No stream yet: the read is still listing them.
    if streams.is_empty()
        || phases().any(|p| matches!(p, StreamPhase::Running | StreamPhase::Waiting))
    {
        StreamPhase::Running
    } else if phases().any(|p| p == StreamPhase::Failed) {
        StreamPhase::Failed
    } else {
        StreamPhase::Complete
    }
}

fn name_width(streams: &[StreamSnapshot]) -> usize {
    let longest = streams.iter().map(|s| s.name.chars().count()).max();
    longest.unwrap_or(0).clamp("total".len(), 40)
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// One live line: `⠹ users     running    1,200 records  400/s  12 requests  3/4+ slices ...`.
fn stream_line(s: &StreamSnapshot, width: usize, rate: f64, frame: usize) -> String {
    let mark = match s.phase {
        StreamPhase::Waiting => '·',
        StreamPhase::Running => SPINNER[frame % SPINNER.len()],
        StreamPhase::Complete => '✓',
        StreamPhase::Failed => '✗',
    };
    let mut line = format!(
        "{mark} {:<width$}  {:<8} {:>9} records {:>7}/s {:>6} requests {:>7} slices",
        clip(&s.name, width),
        phase_name(s.phase),
        thousands(s.records),
        thousands(rate.round() as u64),
        thousands(s.requests),
        slices(s),
    );
    if s.retries > 0 {
        let _ = write!(line, "  retried {}", thousands(s.retries));
    }
    if s.rate_limit_waits > 0 {
        let _ = write!(line, "  rate-limited {}", thousands(s.rate_limit_waits));
    }
    if !s.waited.is_zero() {
        let _ = write!(line, "  waited {}", duration(s.waited));
    }
    let _ = write!(line, "  {}", duration(s.elapsed));
    line
}

/// The table printed when the read ends.
fn summary(streams: &[StreamSnapshot], elapsed: Duration) -> String {
    let total = totals(streams, elapsed);
    let width = name_width(streams).max("stream".len());
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<width$}  {:<8} {:>11} {:>9} {:>9} {:>7} {:>12} {:>7} {:>8} {:>10}",
        "stream",
        "status",
        "records",
        "requests",
        "slices",
        "retries",
        "rate-limited",
        "waited",
        "time",
        "records/s"
    );
    for s in streams.iter().chain([&total]) {
        let seconds = s.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            thousands((s.records as f64 / seconds).round() as u64)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            table,
            "{:<width$}  {:<8} {:>11} {:>9} {:>9} {:>7} {:>12} {:>7} {:>8} {:>10}",
            clip(&s.name, width),
            phase_name(s.phase),
            thousands(s.records),
            thousands(s.requests),
            slices(s),
            thousands(s.retries),
            thousands(s.rate_limit_waits),
            duration(s.waited),
            duration(s.elapsed),
            rate,
        );
    }
    table
}

fn phase_name(phase: StreamPhase) -> &'static str {
    match phase {
        StreamPhase::Waiting => "waiting",
        StreamPhase::Running => "running",
        StreamPhase::Complete => "complete",
        StreamPhase::Failed => "failed",
    }
}

/// `done/known`, with a `+` while more slices may come.
fn slices(s: &StreamSnapshot) -> String {
    let more = if s.all_slices_known || s.phase == StreamPhase::Waiting {
        ""
    } else {
        "+"
    };
    format!("{}/{}{more}", s.slices_done, s.slices_known)
}

/// `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `0.4s`, `12.0s`, `3m05s`, `2h07m`.
fn duration(d: Duration) -> String {
    let seconds = d.as_secs();
    match seconds {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds / 60 % 60),
    }
}

/// stderr as a terminal of 80 columns, for `--progress always` when it is not one.
#[derive(Debug)]
struct PlainStderr;

impl PlainStderr {
    fn write(&self, text: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(text.as_bytes())
    }

    /// The ANSI escape that moves the cursor `n` cells in `direction` (`A` up, `B` down, `C`
    /// right, `D` left); nothing for 0, which terminals would read as 1.
    fn move_cursor(&self, n: usize, direction: char) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}{direction}"))
    }
}

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        80
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'D')
    }

    fn write_line(&self, line: &str) -> std::io::Result<()> {
        self.write(&format!("{line}\n"))
    }

    fn write_str(&self, text: &str) -> std::io::Result<()> {
        self.write(text)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(name: &str, phase: StreamPhase) -> StreamSnapshot {
        StreamSnapshot {
            name: name.to_owned(),
            phase,
            records: 1_234_567,
            requests: 1_235,
            slices_done: 3,
            slices_known: 4,
            all_slices_known: false,
            retries: 2,
            rate_limit_waits: 1,
            waited: Duration::from_secs(3),
            elapsed: Duration::from_millis(2_500),
        }
    }

    #[test]
    fn a_line_shows_every_count() {
        let line = stream_line(&snapshot("users", StreamPhase::Running), 8, 400.4, 0);
        assert_eq!(
            line,
            "⠋ users     running  1,234,567 records     400/s  1,235 requests    3/4+ slices  retried 2  rate-limited 1  waited 3.0s  2.5s"
        );
        let done = StreamSnapshot {
            retries: 0,
            rate_limit_waits: 0,
            waited: Duration::ZERO,
            all_slices_known: true,
            ..snapshot("users", StreamPhase::Complete)
        };
        assert!(stream_line(&done, 5, 0.0, 0).starts_with("✓ users  complete"));
        assert!(stream_line(&done, 5, 0.0, 0).contains(" 3/4 slices  2.5s"));
    }

    #[test]
    fn the_summary_has_a_row_per_stream_and_a_total() {
        let streams = [
            snapshot("users", StreamPhase::Complete),
            snapshot("orders", StreamPhase::Failed),
        ];
        let table = summary(&streams, Duration::from_secs(5));
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(rows[0].starts_with("stream  "), "{table}");
        assert!(
            rows[1].starts_with("users   complete   1,234,567"),
            "{table}"
        );
        assert!(rows[2].starts_with("orders  failed"), "{table}");
        assert!(
            rows[3].starts_with("total   failed     2,469,134"),
            "{table}"
        );
        assert!(rows[3].contains("6/8+"), "{table}");
        assert!(rows[3].contains(" 4            2    6.0s "), "{table}");
        assert!(rows[3].ends_with("493,827"), "{table}");
    }

    #[test]
    fn numbers_and_durations_read_easily() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(duration(Duration::from_millis(400)), "0.4s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(duration(Duration::from_secs(7_620)), "2h07m");
        assert_eq!(clip("a_very_long_name", 6), "a_ver…");
    }

    #[test]
    fn the_rate_is_measured_over_recent_counts() {
        let mut rates = Rates::default();
        let start = Instant::now();
        assert_eq!(rates.per_second(0, 0, start), 0.0);
        let rate = rates.per_second(0, 500, start + Duration::from_secs(1));
        assert!((rate - 500.0).abs() < 1e-6);
        // Counts older than the window stop counting.
        rates.per_second(0, 500, start + Duration::from_secs(5));
        let rate = rates.per_second(0, 700, start + Duration::from_secs(6));
        assert!((rate - 200.0).abs() < 1e-6, "{rate}");
    }
}
