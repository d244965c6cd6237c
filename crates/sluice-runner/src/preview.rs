//! `sluice preview`: reads a few records of each stream, as the Connector Builder's test read
//! does, and prints them for a person: a table per stream, the requests it made (secrets
//! masked), and a hint for each stream that failed or read nothing.
//!
//! Streams are read one at a time, so every request is the stream's being read (its parents'
//! included). Output goes to stdout; the exit code is non-zero when a stream failed.

mod hints;
mod requests;
mod table;

use crate::cli::PreviewArgs;
use crate::inputs;
use crate::text::count;
use requests::{LoggedRequest, RequestLog};
use serde_json::{Map, Value};
use sluice_engine::{
    EngineError, MessageWriter, PendingMessages, ReadLimits, Source, SourceOptions,
};
use sluice_protocol::{
    AirbyteStream, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream, DestinationSyncMode, SyncMode,
};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// The table width when stdout is not a terminal and `COLUMNS` is not set.
const DEFAULT_WIDTH: usize = 120;

/// Runs the command; errors that stop it before any stream is read go to stderr.
pub fn main(args: PreviewArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(preview(args, &mut stdout)) {
        Ok(code) => code,
        Err(error) => {
            let _ = stdout.flush();
            eprintln!("error: {}", error.message);
            if let Some(detail) = error.internal_message.filter(|d| *d != error.message) {
                eprintln!("  {detail}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What one stream's read gave.
struct StreamRead {
    records: Vec<Map<String, Value>>,
    /// The stream's error messages, when it failed.
    errors: Vec<String>,
    requests: Vec<LoggedRequest>,
}

async fn preview(args: PreviewArgs, out: &mut impl Write) -> Result<ExitCode, EngineError> {
    let common = &args.common;
    let config = match &common.config {
        Some(path) => inputs::read_config(path)?,
        None => Value::Object(Default::default()),
    };
    let loaded = inputs::load_manifest(common.manifest.as_deref(), &config)?;
    // Errors found while building and reading are located in the manifest file afterwards.
    let locator = sluice_engine::Locator::new(loaded.source.as_ref(), &loaded.manifest.resolved);
    preview_manifest(&args, config, loaded, out)
        .await
        .map_err(|error| locator.locate(error))
}

async fn preview_manifest(
    args: &PreviewArgs,
    config: Value,
    loaded: inputs::LoadedManifest,
    out: &mut impl Write,
) -> Result<ExitCode, EngineError> {
    let common = &args.common;
    let transports = inputs::transport(common)?;
    let log = Arc::new(RequestLog::new(transports.transport));
    let options = SourceOptions {
        manifest_dir: loaded.dir,
        manifest_source: loaded.source,
        transport: Arc::clone(&log) as _,
        messages: PendingMessages::new(),
        max_wait: Some(common.max_wait),
        checkpoint_every: None,
        // One partition at a time: requests come in order and none is wasted past the limits.
        concurrency: Some(1),
        progress: None,
        limits: ReadLimits {
            records: Some(args.records),
            slices: Some(args.slices),
            pages_per_slice: Some(args.pages),
        },
    };
    let source = Source::new(loaded.manifest, config, options)?;
    source.validate_config()?;
    let write_error =
        |e: std::io::Error| EngineError::system(format!("cannot write to stdout: {e}"));
    // Discover reads the API for dynamic streams and schemas: its requests come first, and
    // show what went wrong when it fails.
    let discovered = source.discover().await;
    let discovering = log.take();
    let secrets = source.secrets();
    if !discovering.is_empty() {
        writeln!(out, "discover: {}", count(discovering.len(), "request")).map_err(write_error)?;
        print_requests(out, &discovering, &secrets).map_err(write_error)?;
        writeln!(out).map_err(write_error)?;
    }
    let catalog = discovered?;
    let streams: Vec<AirbyteStream> = match &args.stream {
        None => catalog.streams,
        Some(name) => {
            let names: Vec<&str> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
            let Some(stream) = catalog.streams.iter().find(|s| s.name == *name) else {
                return Err(EngineError::config(format!(
                    "no stream '{name}' in the manifest; its streams are: {}",
                    names.join(", ")
                )));
            };
            vec![stream.clone()]
        }
    };
    let width = terminal_width();
    let mut failed = 0;
    let mut empty = 0;
    for stream in streams {
        let name = stream.name.clone();
        let read = read_stream(&source, stream, &log).await?;
        // Tokens the authenticators obtained while reading are secrets too.
        let secrets = source.secrets();
        let definition = hints::definition(&source.manifest().resolved, &name);
        let hint = if !read.errors.is_empty() {
            failed += 1;
            Some(hints::failed(definition.as_ref(), &read.requests, &secrets))
        } else if read.records.is_empty() {
            empty += 1;
            Some(hints::read_nothing(definition.as_ref(), &read.requests))
        } else {
            None
        };
        print_stream(out, &name, &read, hint, args, width, &secrets).map_err(write_error)?;
    }
    // `--record-cassette` keeps what the preview fetched, to replay it later.
    if let (Some(recorder), Some(path)) = (&transports.recorder, &common.record_cassette) {
        inputs::save_recording(recorder, path, &source.secrets())?;
    }
    if failed > 0 || empty > 0 {
        writeln!(out, "{failed} failed, {empty} read nothing").map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads one stream within the limits: incrementally from no state where it can, as the
/// Builder's test read does.
async fn read_stream(
    source: &Source,
    stream: AirbyteStream,
    log: &RequestLog,
) -> Result<StreamRead, EngineError> {
    let incremental = stream.supported_sync_modes.contains(&SyncMode::Incremental);
    let cursor_field = stream.default_cursor_field.clone();
    let mut configured = ConfiguredAirbyteStream::new(
        stream,
        if incremental {
            SyncMode::Incremental
        } else {
            SyncMode::FullRefresh
        },
        DestinationSyncMode::Overwrite,
    );
    if incremental {
        configured.cursor_field = cursor_field;
    }
    let catalog = ConfiguredAirbyteCatalog {
        streams: vec![configured],
    };
    let mut writer = MessageWriter::new(Vec::new());
    // A failed stream is told by its ERROR trace; the read's own error only repeats it.
    let _ = source.read(&catalog, &[], &mut writer).await;
    let output = writer
        .into_inner()
        .map_err(|e| EngineError::system(format!("cannot collect the records: {e}")))?;
    let mut read = StreamRead {
        records: Vec::new(),
        errors: Vec::new(),
        requests: log.take(),
    };
    for line in output.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        match message.get("type").and_then(Value::as_str) {
            Some("RECORD") => {
                if let Some(Value::Object(data)) = message.pointer("/record/data") {
                    read.records.push(data.clone());
                }
            }
            Some("TRACE") => {
                let Some(error) = message.pointer("/trace/error") else {
                    continue;
                };
                let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
                let mut shown = text("message").unwrap_or_default();
                if let Some(internal) = text("internal_message").filter(|i| *i != shown) {
                    shown = format!("{shown} ({internal})");
                }
                read.errors.push(shown);
            }
            _ => {}
        }
    }
    Ok(read)
}

fn print_stream(
    out: &mut impl Write,
    name: &str,
    read: &StreamRead,
    hint: Option<String>,
    args: &PreviewArgs,
    width: usize,
    secrets: &[String],
) -> std::io::Result<()> {
    let records = read.records.len();
    let mut heading = format!("{name}: {}", count(records, "record"));
    if records as u64 >= args.records {
        heading.push_str(&format!(" (the --records limit of {})", args.records));
    }
    if !read.errors.is_empty() {
        heading.push_str(", FAILED");
    }
    writeln!(out, "{heading}")?;
    if !read.records.is_empty() {
        out.write_all(table::render(&read.records, args.cell_width, width).as_bytes())?;
    }
    for error in &read.errors {
        writeln!(out, "error: {error}")?;
    }
    writeln!(out, "{}:", count(read.requests.len(), "request"))?;
    print_requests(out, &read.requests, secrets)?;
    if let Some(hint) = hint {
        writeln!(out, "hint: {hint}")?;
    }
    writeln!(out)
}

fn print_requests(
    out: &mut impl Write,
    requests: &[LoggedRequest],
    secrets: &[String],
) -> std::io::Result<()> {
    let mut rest = requests;
    while let Some((request, after)) = rest.split_first() {
        // Retries that fared alike take one line.
        let alike = after.iter().take_while(|r| r.repeats(request)).count();
        writeln!(
            out,
            "  {} {} -> {}",
            request.method(),
            request.shown_url(secrets),
            request.shown_outcome(secrets)
        )?;
        if alike > 0 {
            writeln!(out, "    ({alike} more alike)")?;
        }
        rest = &after[alike..];
    }
    Ok(())
}

/// `COLUMNS` when set, else the terminal's width, else [`DEFAULT_WIDTH`].
fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return columns;
    }
    #[cfg(target_os = "linux")]
    {
        use std::io::IsTerminal;
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            if let Ok(size) = rustix::termios::tcgetwinsize(&stdout) {
                if size.ws_col > 0 {
                    return usize::from(size.ws_col);
                }
            }
        }
    }
    DEFAULT_WIDTH
}
