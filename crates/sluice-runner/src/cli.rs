use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs Airbyte low-code (declarative) manifests as source connectors.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the connector's spec (the manifest's, or the generic one without a manifest).
    Spec(CommonArgs),
    /// Check the config: runs the manifest's check and prints CONNECTION_STATUS.
    Check(CommonArgs),
    /// Print the catalog of streams.
    Discover(CommonArgs),
    /// Read the configured streams.
    Read(ReadArgs),
    /// Resolve and check a manifest without a config; exits 0 only when sluice can run it.
    Validate(ValidateArgs),
    /// Read a few records of each stream and show them as tables, with the requests made
    /// (secrets masked) and a hint for each stream that failed or read nothing. For people:
    /// prints text, not protocol messages; exits non-zero when a stream failed.
    Preview(PreviewArgs),
}

impl Command {
    /// The arguments every connector command takes.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Command::Spec(c) | Command::Check(c) | Command::Discover(c) => c,
            Command::Read(r) => &r.common,
            Command::Preview(p) => &p.common,
            Command::Validate(_) => unreachable!("validate takes no config"),
        }
    }

    /// Uses the manifest at `path`, when it exists, for a connector command given no
    /// `--manifest`: the platform's manifest-only connector images are built `FROM` the
    /// source-declarative-manifest image with their manifest copied to [`CONNECTOR_MANIFEST`],
    /// and the reference prefers that file to a manifest injected in the config.
    pub fn default_manifest(&mut self, path: &Path) {
        let common = match self {
            Command::Spec(c) | Command::Check(c) | Command::Discover(c) => c,
            Command::Read(r) => &mut r.common,
            Command::Preview(p) => &mut p.common,
            Command::Validate(_) => return,
        };
        if common.manifest.is_none() && path.is_file() {
            common.manifest = Some(path.to_path_buf());
        }
    }
}

/// Where a manifest-only connector's image holds its manifest (see [`Command::default_manifest`]).
pub const CONNECTOR_MANIFEST: &str =
    "/airbyte/integration_code/source_declarative_manifest/manifest.yaml";

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The config JSON file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The manifest YAML file; without it the manifest is
    /// /airbyte/integration_code/source_declarative_manifest/manifest.yaml when that exists (a
    /// manifest-only connector's image), else the config key `__injected_declarative_manifest`,
    /// as on the Airbyte platform.
    #[arg(long, visible_alias = "manifest-path")]
    pub manifest: Option<PathBuf>,
    /// Answer HTTP requests from this cassette (or the `cassette.json` of this folder) instead
    /// of the network.
    #[arg(long, value_name = "CASSETTE|DIR")]
    pub replay: Option<PathBuf>,
    /// Record every HTTP exchange into this cassette (secrets redacted).
    #[arg(long, value_name = "CASSETTE", conflicts_with = "replay")]
    pub record_cassette: Option<PathBuf>,
    /// A request that receives no byte for this many seconds fails (and is retried as the
    /// stream's error handler says).
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = seconds)]
    pub stall_timeout: Duration,
    /// A request not complete within this many seconds fails (and is retried likewise); a
    /// manifest's own timeouts take precedence.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = seconds)]
    pub request_timeout: Duration,
    /// The longest wait before a retry: a server asking to wait longer fails the stream at once
    /// with a transient error instead of sleeping.
    #[arg(long, value_name = "SECONDS", default_value = "3600", value_parser = seconds)]
    pub max_wait: Duration,
    /// The largest response body read, once decompressed (bytes, or with a unit: 384MiB, 2GiB,
    /// 500MB): a larger one fails its stream instead of filling memory, as a body that never
    /// ends or a decompression bomb would.
    #[arg(long, value_name = "SIZE", default_value = "384MiB", value_parser = byte_size)]
    pub max_response_size: usize,
}

#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The configured catalog JSON file.
    #[arg(long)]
    pub catalog: PathBuf,
    /// The input state JSON file.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Emits a STATE every N records inside a slice while its records come in ascending cursor
    /// order (off by default: the reference emits state only when a slice closes).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// How many partitions are read at once, across all streams (overrides the manifest's
    /// `concurrency_level`; 1 reads streams and slices one after the other, in order).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: Option<u64>,
    /// A live display of each stream's progress on stderr, and a summary at the end (stdout
    /// keeps only Airbyte messages). `auto`: when stderr is a terminal and stdout is not.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = crate::progress::When::Auto)]
    pub progress: crate::progress::When,
}

#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only this stream.
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
    /// The most records read of each stream.
    #[arg(long, value_name = "N", default_value = "10", value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,
    /// The most pages read of each slice (the Connector Builder's default).
    #[arg(long, value_name = "N", default_value = "5", value_parser = clap::value_parser!(u64).range(1..))]
    pub pages: u64,
    /// The most slices read of each stream (the Connector Builder's default).
    #[arg(long, value_name = "N", default_value = "5", value_parser = clap::value_parser!(u64).range(1..))]
    pub slices: u64,
    /// The widest a table cell is, in characters (longer values end in `…`); the table also
    /// fits the terminal's width, or `COLUMNS`.
    #[arg(long, value_name = "N", default_value = "40")]
    pub cell_width: usize,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The manifest YAML file.
    #[arg(long, visible_alias = "manifest-path")]
    pub manifest: PathBuf,
    /// `text`: one line per error or warning on stderr, as a compiler prints them; `json`: one
    /// JSON document on stdout, for editors and CI.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// How `validate` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// A number of seconds (fractions allowed), positive and finite.
fn byte_size(text: &str) -> Result<usize, String> {
    const UNITS: [(&str, u64); 7] = [
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("KB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("B", 1),
    ];
    let trimmed = text.trim();
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| Some((trimmed.strip_suffix(suffix)?, *unit)))
        .unwrap_or((trimmed, 1));
    let bytes = number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("'{text}' is not a size such as 1048576, 384MiB or 2GB"))?;
    if bytes == 0 {
        return Err(format!("'{text}' must be more than 0 bytes"));
    }
    Ok(bytes)
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if value <= 0.0 {
        return Err(format!("'{text}' must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(value).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(byte_size("384MiB"), Ok(384 << 20));
        assert_eq!(byte_size("2 GiB"), Ok(2 << 30));
        assert_eq!(byte_size("500MB"), Ok(500_000_000));
        assert_eq!(byte_size("1024"), Ok(1024));
        assert_eq!(byte_size("10B"), Ok(10));
        assert!(byte_size("0").is_err());
        assert!(byte_size("lots").unwrap_err().contains("'lots'"));
        assert!(byte_size("99999999999GiB").is_err());
    }
}
