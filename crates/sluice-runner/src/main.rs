//! `sluice`: runs an Airbyte low-code manifest as a source connector, speaking the Airbyte
//! protocol (JSON lines on stdout). See the README for usage.

/// JSON decoding allocates a small object per value; mimalloc is markedly faster at that than
/// the system allocator (measured with `cargo xtask bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the kernel backs memory with transparent huge pages by default, each 2 MiB region
/// mimalloc touches becomes resident whole: opting out took peak RSS from 45-54 MB to 26-30 MB on
/// `cargo xtask bench` scenario a-offset. Best-effort: a kernel that refuses leaves the default.
fn opt_out_of_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

mod cli;
mod config_file;
mod inputs;
mod logging;
mod output;
mod preview;
mod progress;
mod text;
mod validate;

use clap::Parser;
use cli::{Cli, Command};
use sluice_engine::{
    EngineError, MessageWriter, PendingMessages, ReadLimits, ReadProgress, Source, SourceOptions,
};
use sluice_protocol::AirbyteMessage;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    opt_out_of_transparent_huge_pages();
    let mut cli = Cli::parse();
    cli.command
        .default_manifest(std::path::Path::new(cli::CONNECTOR_MANIFEST));
    if let Command::Preview(args) = cli.command {
        // A report for people on stdout: no protocol writer, no LOG messages.
        return preview::main(args);
    }
    let pending = PendingMessages::new();
    logging::install(Arc::clone(&pending));
    let stdout = output::Stdout::default();
    let watched = stdout.clone();
    let out = match MessageWriter::threaded(BufWriter::with_capacity(256 * 1024, stdout.clone())) {
        Ok(writer) => writer,
        // No thread to be had: write from this one.
        Err(_) => MessageWriter::new(BufWriter::with_capacity(256 * 1024, stdout)),
    };
    let mut out = out.with_pending(Arc::clone(&pending));
    let result = run(cli, &mut out, pending);
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            let trace = AirbyteMessage::error_trace(
                error.message.clone(),
                error.internal_message.clone(),
                error.failure_type,
                None,
            );
            // Nothing more can be reported if stdout itself is gone.
            let _ = out.message(&trace);
            ExitCode::FAILURE
        }
    };
    let flushed = out.flush();
    if watched.is_closed() {
        // The reader went away (`sluice read | head`): nothing more can be said on stdout, and a
        // panic or a trace on stderr would only alarm; the exit code says it, as a shell's does.
        eprintln!("sluice: stdout was closed by its reader; stopped");
        return ExitCode::from(output::CLOSED_STDOUT_EXIT_CODE);
    }
    if flushed.is_err() {
        return ExitCode::FAILURE;
    }
    code
}

fn run<W: Write + Send + 'static>(
    cli: Cli,
    out: &mut MessageWriter<W>,
    messages: Arc<PendingMessages>,
) -> Result<ExitCode, EngineError> {
    match cli.command {
        Command::Validate(args) => return Ok(validate::validate(&args.manifest, args.format)),
        Command::Spec(args) if args.manifest.is_none() && args.config.is_none() => {
            write(out, &AirbyteMessage::spec(sluice_engine::generic_spec()))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Command::Spec(common) = &cli.command {
        // The spec is read straight from the manifest: no streams are built, nothing is
        // connected, so it answers even for a manifest whose streams sluice cannot run.
        let config = match &common.config {
            Some(path) => inputs::read_config(path)?,
            None => serde_json::Value::Object(Default::default()),
        };
        let spec = inputs::load_spec(common.manifest.as_deref(), &config)?;
        write(
            out,
            &AirbyteMessage::spec(sluice_engine::spec_of(spec.as_ref())),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    // Streams are read one after another and records are written by their own thread, so the
    // connection tasks need no workers of their own: one thread was faster (1.5 s against 1.8 s)
    // and lighter (3-5 MB less) than the multi-thread runtime on `cargo xtask bench` a-offset.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::system(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run_connector(cli.command, out, messages))
}

async fn run_connector<W: Write + Send + 'static>(
    command: Command,
    out: &mut MessageWriter<W>,
    messages: Arc<PendingMessages>,
) -> Result<ExitCode, EngineError> {
    let common = command.common().clone();
    let config = match &common.config {
        Some(path) => inputs::read_config(path)?,
        None => serde_json::Value::Object(Default::default()),
    };
    let loaded = inputs::load_manifest(common.manifest.as_deref(), &config)?;
    // Errors found while running are located in the manifest file afterwards.
    let locator = sluice_engine::Locator::new(loaded.source.as_ref(), &loaded.manifest.resolved);
    run_source(command, common, config, loaded, out, messages)
        .await
        .map_err(|error| locator.locate(error))
}

async fn run_source<W: Write + Send + 'static>(
    command: Command,
    common: cli::CommonArgs,
    config: serde_json::Value,
    file: inputs::LoadedManifest,
    out: &mut MessageWriter<W>,
    messages: Arc<PendingMessages>,
) -> Result<ExitCode, EngineError> {
    let inputs::Transports {
        transport,
        recorder,
    } = inputs::transport(&common)?;
    let progress = match &command {
        Command::Read(args) if args.progress.enabled() => Some(ReadProgress::new()),
        _ => None,
    };
    let options = SourceOptions {
        manifest_dir: file.dir,
        manifest_source: file.source,
        transport,
        messages,
        max_wait: Some(common.max_wait),
        checkpoint_every: match &command {
            Command::Read(args) => args.checkpoint_every,
            _ => None,
        },
        concurrency: match &command {
            Command::Read(args) => args.concurrency.and_then(|n| usize::try_from(n).ok()),
            _ => None,
        },
        limits: ReadLimits::default(),
        progress: progress.clone(),
    };
    let source = Source::new(file.manifest, config, options)?;
    logging::mask_secrets(source.secret_list());
    if let (Some(migrated), Some(path)) = (source.migrated_config(), &common.config) {
        // The reference writes the migrated config back to the file (and fails the command when
        // it cannot); a read-only config only costs the migration being redone next time.
        if let Err(error) = config_file::rewrite(path, migrated) {
            tracing::warn!(
                "cannot write the migrated config back to {}: {error}",
                path.display()
            );
        }
    }
    let result = match command {
        Command::Spec(_) => unreachable!("answered before the runtime starts"),
        Command::Check(_) => {
            let status = source.check(out).await?;
            write(out, &AirbyteMessage::ConnectionStatus(status))
        }
        Command::Discover(_) => {
            source.validate_config()?;
            let catalog = source.discover().await?;
            write(out, &AirbyteMessage::catalog(catalog))
        }
        Command::Read(args) => {
            source.validate_config()?;
            let catalog = inputs::read_catalog(&args.catalog)?;
            let state = match &args.state {
                Some(path) => inputs::read_state(path)?,
                None => Vec::new(),
            };
            let display = progress.and_then(progress::Display::start);
            let read = source.read(&catalog, &state, out).await;
            if let Some(display) = display {
                display.finish();
            }
            read
        }
        Command::Validate(_) => unreachable!("handled before the runtime starts"),
        Command::Preview(_) => unreachable!("handled before the protocol writer starts"),
    };
    if let (Some(recorder), Some(path)) = (recorder, &common.record_cassette) {
        inputs::save_recording(&recorder, path, &source.secrets())?;
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn write<W: Write + Send + 'static>(
    out: &mut MessageWriter<W>,
    message: &AirbyteMessage,
) -> Result<(), EngineError> {
    out.message(message)
        .map_err(|e| EngineError::system(format!("cannot write to stdout: {e}")))
}
