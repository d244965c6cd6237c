//! Running one connector process and measuring it: wall time, peak resident memory, and what it
//! printed (RECORD lines counted, the first record and the other messages kept for checks).
//!
//! Peak RSS comes from the kernel's high-water mark `VmHWM` in `/proc/PID/status`, polled while
//! the child runs: the mark only grows, so a poll sees every peak reached before it and only
//! growth in the last poll interval (at most a few milliseconds) could be missed. (`wait4` would
//! be exact but needs `unsafe`, which the workspace forbids.)

use anyhow::Context;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many non-record lines of output are kept for error messages and checks.
const KEPT_LINES: usize = 200;
/// Longest kept line; longer ones are cut.
const KEPT_LINE_BYTES: usize = 64 * 1024;
/// How a RECORD message line starts, compact (sluice, the reference) or spaced.
const RECORD_PREFIXES: [&[u8]; 2] = [b"{\"type\":\"RECORD\"", b"{\"type\": \"RECORD\""];
/// How a STATE message line starts.
const STATE_PREFIXES: [&[u8]; 2] = [b"{\"type\":\"STATE\"", b"{\"type\": \"STATE\""];
/// Bytes of a line that tell whether it is a record: the longest prefix.
const HEAD_BYTES: usize = 18;

/// One finished (or killed) child process.
#[derive(Debug)]
pub struct ChildRun {
    pub wall: Duration,
    pub peak_rss_bytes: Option<u64>,
    pub status: ExitStatus,
    /// The child ran past its time limit and was killed.
    pub timed_out: bool,
    pub output: OutputSummary,
    /// The last lines of standard error.
    pub stderr_tail: String,
}

/// Reads `VmHWM` (peak resident set size) of process `pid`, in bytes; `None` once it has exited.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

/// The `VmHWM:   1234 kB` line of a `/proc/PID/status` text, in bytes.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut fields = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

/// Runs `command` to completion (killing it after `limit`), its stdin closed and its output
/// scanned as it comes.
pub fn run_child(command: &mut Command, limit: Duration) -> anyhow::Result<ChildRun> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    let stdout = child.stdout.take().context("child has no stdout pipe")?;
    let stderr = child.stderr.take().context("child has no stderr pipe")?;
    let stdout_reader = std::thread::spawn(move || scan_stdout(stdout));
    let stderr_reader = std::thread::spawn(move || tail_of(stderr));

    let (status, peak, timed_out) = wait_polling_rss(&mut child, started, limit)?;
    let wall = started.elapsed();
    let output = join(stdout_reader)?;
    let stderr_tail = join(stderr_reader)?;
    Ok(ChildRun {
        wall,
        peak_rss_bytes: peak,
        status,
        timed_out,
        output,
        stderr_tail,
    })
}

fn join<T>(handle: JoinHandle<std::io::Result<T>>) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("an output reader thread panicked"))?
        .context("cannot read the child's output")
}

/// Waits for the child, reading its peak RSS at every check. Checks are frequent at first, so
/// short runs (`spec`) are timed precisely and their memory seen, and sparser later, so long runs
/// are not slowed.
fn wait_polling_rss(
    child: &mut Child,
    started: Instant,
    limit: Duration,
) -> anyhow::Result<(ExitStatus, Option<u64>, bool)> {
    let pid = child.id();
    let mut peak: Option<u64> = None;
    loop {
        if let Some(current) = peak_rss_of(pid) {
            peak = Some(peak.map_or(current, |p| p.max(current)));
        }
        if let Some(status) = child.try_wait().context("cannot wait for the child")? {
            return Ok((status, peak, false));
        }
        let elapsed = started.elapsed();
        if elapsed > limit {
            // Only this child, which we started, by its handle.
            let _ = child.kill();
            let status = child.wait().context("cannot wait for the killed child")?;
            return Ok((status, peak, true));
        }
        let pause = match elapsed.as_millis() {
            0..100 => Duration::from_micros(100),
            100..2_000 => Duration::from_micros(500),
            _ => Duration::from_millis(2),
        };
        std::thread::sleep(pause);
    }
}

/// What a connector printed on stdout.
#[derive(Debug, Default)]
pub struct OutputSummary {
    /// Lines whose message type is RECORD.
    pub records: u64,
    /// The first RECORD line.
    pub first_record: Option<String>,
    /// Up to [`KEPT_LINES`] other lines (LOG, TRACE, SPEC, CONNECTION_STATUS, ...).
    pub other_lines: Vec<String>,
    /// Lines whose message type is STATE (kept or not).
    pub states: u64,
    /// The last STATE line.
    pub last_state: Option<String>,
    pub bytes: u64,
}

impl OutputSummary {
    /// The other lines that parse as JSON messages.
    pub fn messages(&self) -> impl Iterator<Item = serde_json::Value> + '_ {
        self.other_lines
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
    }

    /// The first error the connector reported: an ERROR trace's message, else an ERROR/FATAL
    /// log's.
    pub fn first_error(&self) -> Option<String> {
        let messages: Vec<serde_json::Value> = self.messages().collect();
        let trace = messages
            .iter()
            .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
            .find_map(|m| m["trace"]["error"]["message"].as_str());
        let log = || {
            messages
                .iter()
                .filter(|m| m["type"] == "LOG")
                .filter(|m| matches!(m["log"]["level"].as_str(), Some("ERROR" | "FATAL")))
                .find_map(|m| m["log"]["message"].as_str())
        };
        trace.or_else(log).map(str::to_owned)
    }
}

fn is_record_line(line: &[u8]) -> bool {
    RECORD_PREFIXES
        .iter()
        .any(|prefix| line.starts_with(prefix))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineMode {
    /// Collecting the head of the line to tell its type.
    Undecided,
    /// A record line not worth keeping: bytes are only counted.
    Skip,
    /// Keeping the whole line.
    Keep,
}

/// Scans output chunk by chunk without splitting it into owned lines: most lines are records
/// that are only counted.
#[derive(Debug)]
struct LineScanner {
    summary: OutputSummary,
    current: Vec<u8>,
    mode: LineMode,
    current_is_record: bool,
}

impl LineScanner {
    fn new() -> Self {
        Self {
            summary: OutputSummary::default(),
            current: Vec::with_capacity(KEPT_LINE_BYTES),
            mode: LineMode::Undecided,
            current_is_record: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        self.summary.bytes += data.len() as u64;
        while !data.is_empty() {
            // Fast path for nearly every line: a record line after the first one, whose start
            // is in this chunk, is counted and skipped without copying a byte.
            if self.mode == LineMode::Undecided
                && self.current.is_empty()
                && self.summary.first_record.is_some()
                && is_record_line(data)
            {
                self.summary.records += 1;
                match memchr::memchr(b'\n', data) {
                    Some(end) => {
                        data = &data[end + 1..];
                        continue;
                    }
                    None => {
                        self.mode = LineMode::Skip;
                        self.current_is_record = true;
                        break;
                    }
                }
            }
            match memchr::memchr(b'\n', data) {
                Some(end) => {
                    self.extend_line(&data[..end]);
                    self.finish_line();
                    data = &data[end + 1..];
                }
                None => {
                    self.extend_line(data);
                    break;
                }
            }
        }
    }

    fn extend_line(&mut self, segment: &[u8]) {
        match self.mode {
            LineMode::Skip => {}
            LineMode::Undecided => {
                self.current.extend_from_slice(segment);
                if self.current.len() >= HEAD_BYTES {
                    self.decide();
                }
            }
            LineMode::Keep => {
                let room = KEPT_LINE_BYTES.saturating_sub(self.current.len());
                self.current
                    .extend_from_slice(&segment[..segment.len().min(room)]);
            }
        }
    }

    fn decide(&mut self) {
        self.current_is_record = is_record_line(&self.current);
        self.mode = if self.current_is_record && self.summary.first_record.is_some() {
            LineMode::Skip
        } else {
            LineMode::Keep
        };
        if self.current_is_record {
            self.summary.records += 1;
        }
    }

    fn finish_line(&mut self) {
        if self.mode == LineMode::Undecided {
            self.decide();
        }
        if !self.current_is_record
            && STATE_PREFIXES
                .iter()
                .any(|prefix| self.current.starts_with(prefix))
        {
            self.summary.states += 1;
            self.summary.last_state = Some(String::from_utf8_lossy(&self.current).into_owned());
        }
        if self.mode == LineMode::Keep && !self.current.is_empty() {
            let line = String::from_utf8_lossy(&self.current).into_owned();
            if self.current_is_record {
                self.summary.first_record = Some(line);
            } else if self.summary.other_lines.len() < KEPT_LINES {
                self.summary.other_lines.push(line);
            }
        }
        self.current.clear();
        self.mode = LineMode::Undecided;
        self.current_is_record = false;
    }
}

fn scan_stdout(mut stdout: impl Read) -> std::io::Result<OutputSummary> {
    let mut scanner = LineScanner::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => scanner.feed(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    scanner.finish_line();
    Ok(scanner.summary)
}

/// The last lines of a stream (standard error), everything else dropped as it is read.
fn tail_of(mut stream: impl Read) -> std::io::Result<String> {
    const KEEP: usize = 4096;
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * KEEP {
                    tail.drain(..tail.len() - KEEP);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let start = tail.len().saturating_sub(KEEP);
    Ok(String::from_utf8_lossy(&tail[start..]).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_records_and_states_across_chunks() {
        let mut scanner = LineScanner::new();
        let output = b"{\"type\":\"LOG\",\"log\":{}}\n{\"type\":\"RECORD\",\"record\":{}}\n{\"type\":\"RECORD\",\"record\":{}}\n{\"type\": \"STATE\", \"state\":{}}\n{\"type\":\"STATE\",\"state\":{}}\n";
        for chunk in output.chunks(7) {
            scanner.feed(chunk);
        }
        scanner.finish_line();
        assert_eq!(scanner.summary.records, 2);
        assert_eq!(scanner.summary.states, 2);
        assert_eq!(scanner.summary.other_lines.len(), 3);
        assert_eq!(
            scanner.summary.last_state.as_deref(),
            Some("{\"type\":\"STATE\",\"state\":{}}")
        );
    }

    #[test]
    fn reads_the_high_water_mark_in_bytes() {
        let status =
            "Name:\tsluice\nVmPeak:\t  20000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t   1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
    }

    #[test]
    fn a_status_without_a_high_water_mark_has_no_peak() {
        // A zombie's status has no memory lines.
        assert_eq!(parse_vm_hwm("Name:\tsluice\nState:\tZ (zombie)\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\tmany kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t12 pages\n"), None);
    }

    #[test]
    fn reads_this_process_peak_from_proc() {
        let resident_now = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            kib * 1024
        };
        let before = resident_now();
        let ballast = vec![1u8; 32 << 20];
        let peak = peak_rss_of(std::process::id()).expect("/proc/self has VmHWM on Linux");
        assert!(ballast.iter().all(|&b| b == 1));
        assert!(
            peak >= before + (30 << 20),
            "resident {before} bytes, then 32 MiB touched, yet the peak reads {peak}"
        );
    }
}
