//! Locating workspace files and writing generated files (or checking that they are current).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's directory.
pub fn root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// Writes `content` to `path`, or with `check` only compares and fails when the file differs,
/// so CI can tell that a committed generated file is stale.
pub fn write_or_check(
    path: &Path,
    content: &str,
    check: bool,
    regenerate_with: &str,
) -> anyhow::Result<()> {
    if check {
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if current != content {
            bail!(
                "{} is stale: run `{regenerate_with}` and commit the result",
                path.display()
            );
        }
        println!("{} is up to date", path.display());
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Where cargo builds: `CARGO_TARGET_DIR` (relative to the workspace root), else `target/`.
pub fn target_dir() -> PathBuf {
    let root = root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}
