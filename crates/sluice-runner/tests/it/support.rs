//! What several integration tests share: running `sluice read` on files.

use std::path::PathBuf;
use std::process::Output;

/// Runs `sluice read --manifest M --config C --catalog K` off the async runtime (the tests'
/// HTTP servers run on it) and returns what it printed and how it exited.
pub async fn sluice_read(manifest: PathBuf, config: PathBuf, catalog: PathBuf) -> Output {
    sluice_read_with(manifest, config, catalog, Vec::new()).await
}

/// [`sluice_read`] with more command-line flags.
pub async fn sluice_read_with(
    manifest: PathBuf,
    config: PathBuf,
    catalog: PathBuf,
    flags: Vec<String>,
) -> Output {
    tokio::task::spawn_blocking(move || {
        read_command(&manifest, &config, &catalog)
            .args(&flags)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `sluice read --manifest M --config C --catalog K`, to add flags and pipes to.
pub fn read_command(
    manifest: &std::path::Path,
    config: &std::path::Path,
    catalog: &std::path::Path,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .arg("read")
        .arg("--manifest")
        .arg(manifest)
        .arg("--config")
        .arg(config)
        .arg("--catalog")
        .arg(catalog);
    command
}

/// A configured catalog reading `names` in full refresh, as JSON text.
pub fn full_refresh_catalog(names: &[&str]) -> String {
    let streams: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            serde_json::json!({
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite"
            })
        })
        .collect();
    serde_json::json!({ "streams": streams }).to_string()
}

/// Writes `manifest` (with `URL_BASE` replaced by `url_base`) and an empty config into `dir`.
pub fn write_manifest_and_config(
    dir: &std::path::Path,
    manifest: &str,
    url_base: &str,
) -> (PathBuf, PathBuf) {
    let manifest_path = dir.join("manifest.yaml");
    std::fs::write(&manifest_path, manifest.replace("URL_BASE", url_base)).unwrap();
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, "{}").unwrap();
    (manifest_path, config_path)
}

/// How many RECORD messages `messages` holds.
pub fn record_count(messages: &[serde_json::Value]) -> usize {
    messages.iter().filter(|m| m["type"] == "RECORD").count()
}

/// The texts of the LOG messages of `level` in `messages`.
pub fn log_texts(messages: &[serde_json::Value], level: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["type"] == "LOG" && m["log"]["level"] == level)
        .map(|m| m["log"]["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}
