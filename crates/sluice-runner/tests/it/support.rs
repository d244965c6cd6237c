//! What several integration tests share: running `sluice read` on files.

use std::path::PathBuf;
use std::process::Output;

/// Runs `sluice read --manifest M --config C --catalog K` off the async runtime (the tests'
/// HTTP servers run on it) and returns what it printed and how it exited.
pub async fn sluice_read(manifest: PathBuf, config: PathBuf, catalog: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("read")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--config")
            .arg(&config)
            .arg("--catalog")
            .arg(&catalog)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
