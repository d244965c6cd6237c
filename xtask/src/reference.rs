//! The Python reference (airbyte-cdk's `source-declarative-manifest`) as the conformance and
//! benchmark tasks find it in a venv.

use std::path::Path;
use std::process::Command;

/// The airbyte-cdk version installed in `venv`, if it has the reference's entrypoint.
pub fn installed_cdk_version(venv: &Path) -> Option<String> {
    if !venv.join("bin/source-declarative-manifest").exists() {
        return None;
    }
    let output = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('airbyte-cdk'))",
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
