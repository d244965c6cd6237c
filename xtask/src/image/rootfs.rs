//! The image's root filesystem: a static `sluice`, a static busybox for the platform's shell
//! scripts, users, `/tmp` and TLS roots, as a list of entries written as one layer tar (and as a
//! directory, the build context of the Dockerfile).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Where the image keeps sluice; `AIRBYTE_ENTRYPOINT` and the image's entrypoint name it.
pub const SLUICE_PATH: &str = "/usr/local/bin/sluice";
/// The user the platform runs connector containers as when its workloads are rootless
/// (`ROOTLESS_USER_ID`/`ROOTLESS_GROUP_ID` in the launcher's `WorkloadSecurityContextProvider.kt`),
/// which the Python image also declares (`USER airbyte`, 1000:1000).
pub const AIRBYTE_UID: u64 = 1000;
/// The working directory of the Python image, where manifest-only connectors put their manifest.
pub const WORKING_DIR: &str = "/airbyte/integration_code";
/// Where the host's CA bundle (Debian's `ca-certificates`) is taken from, and where it goes.
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The busybox applets linked into `/bin`: the launcher's scripts use `sh`, `[`, `kill`, `sleep`,
/// `mv` and `touch` (`ContainerCommandFactory.kt`); the rest make `docker exec` and `docker run
/// --entrypoint sh` usable for debugging.
const APPLETS: &[&str] = &[
    "[", "cat", "chmod", "cp", "date", "echo", "env", "false", "grep", "head", "id", "kill", "ls",
    "mkdir", "mkfifo", "mv", "printf", "ps", "pwd", "rm", "sh", "sleep", "tail", "tee", "test",
    "touch", "true", "wc",
];

/// What an entry of the root filesystem is.
#[derive(Debug)]
pub enum Content {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// One path of the root filesystem (relative, without a leading `/`).
#[derive(Debug)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub content: Content,
}

impl Entry {
    fn dir(path: &str, mode: u32, uid: u64) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            uid,
            content: Content::Dir,
        }
    }

    fn file(path: &str, mode: u32, bytes: Vec<u8>) -> Self {
        Self {
            path: path.to_owned(),
            mode,
            uid: 0,
            content: Content::File(bytes),
        }
    }

    fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.to_owned(),
            mode: 0o777,
            uid: 0,
            content: Content::Symlink(target.to_owned()),
        }
    }
}

/// The root filesystem around the `sluice` and `busybox` executables (both must be static:
/// nothing else in the image could load a shared library). `ca_bundle` is added when given.
pub fn entries(
    sluice: &Path,
    busybox: &Path,
    ca_bundle: Option<&Path>,
) -> anyhow::Result<Vec<Entry>> {
    let sluice_bytes = read_static_executable(sluice)?;
    let busybox_bytes = read_static_executable(busybox)?;
    let mut entries = vec![
        Entry::dir("airbyte", 0o755, AIRBYTE_UID),
        Entry::dir("airbyte/integration_code", 0o755, AIRBYTE_UID),
        Entry::dir("bin", 0o755, 0),
        Entry::file("bin/busybox", 0o755, busybox_bytes),
        // Mount points the runtime fills; present so the tree looks like any image's.
        Entry::dir("dev", 0o755, 0),
        Entry::dir("etc", 0o755, 0),
        Entry::file("etc/group", 0o644, b"root:x:0:\nairbyte:x:1000:\n".to_vec()),
        Entry::file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nairbyte:x:1000:1000:airbyte:/home/airbyte:/bin/sh\n"
                .to_vec(),
        ),
        Entry::dir("etc/ssl", 0o755, 0),
        Entry::dir("etc/ssl/certs", 0o755, 0),
        Entry::dir("home", 0o755, 0),
        Entry::dir("home/airbyte", 0o755, AIRBYTE_UID),
        Entry::dir("proc", 0o755, 0),
        Entry::dir("root", 0o700, 0),
        Entry::dir("sys", 0o755, 0),
        Entry::dir("tmp", 0o1777, 0),
        Entry::dir("usr", 0o755, 0),
        Entry::dir("usr/bin", 0o755, 0),
        Entry::symlink("usr/bin/env", "../../bin/busybox"),
        Entry::dir("usr/local", 0o755, 0),
        Entry::dir("usr/local/bin", 0o755, 0),
        Entry::file(&SLUICE_PATH[1..], 0o755, sluice_bytes),
    ];
    for applet in APPLETS {
        entries.push(Entry::symlink(&format!("bin/{applet}"), "busybox"));
    }
    if let Some(bundle) = ca_bundle {
        let bytes =
            std::fs::read(bundle).with_context(|| format!("cannot read {}", bundle.display()))?;
        entries.push(Entry::file(CA_BUNDLE, 0o644, bytes));
    }
    // Sorted, so parents come before their children and the layer is the same on every build.
    entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    Ok(entries)
}

/// The host's CA bundle when it has one: sluice reads the system's roots first (rustls-native-certs
/// looks at this file, or `SSL_CERT_FILE`) and falls back to the roots compiled into it.
pub fn host_ca_bundle() -> Option<PathBuf> {
    let path = Path::new("/").join(CA_BUNDLE);
    path.is_file().then_some(path)
}

/// Reads an executable and refuses one that needs a dynamic loader.
fn read_static_executable(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !is_elf(&bytes) {
        bail!("{} is not an ELF executable", path.display());
    }
    if has_interpreter(&bytes) {
        bail!(
            "{} is linked dynamically (it names a program interpreter); the image has no shared \
             libraries, so it needs a static executable",
            path.display()
        );
    }
    Ok(bytes)
}

fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header, the mark of a
/// dynamically linked executable.
fn has_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    let (Some(table), Some(entry_size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return true;
    };
    (0..usize::from(count)).any(|i| {
        let at = usize::try_from(table).unwrap_or(usize::MAX) + i * usize::from(entry_size);
        u32_at(at) == Some(PT_INTERP)
    })
}

/// The entries as an uncompressed tar, the image's one layer: fixed mtimes, numeric owners.
pub fn layer_tar(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.uid);
        header.set_mtime(0);
        match &entry.content {
            Content::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{}/", entry.path), std::io::empty())?;
            }
            Content::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, &entry.path, bytes.as_slice())?;
            }
            Content::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &entry.path, target)?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// Writes the entries under `dir` (emptied first), for `docker build`: modes are kept, owners
/// are not (the Dockerfile sets them).
pub fn write_dir(entries: &[Entry], dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for entry in entries {
        let path = dir.join(&entry.path);
        let written = match &entry.content {
            Content::Dir => std::fs::create_dir(&path),
            Content::File(bytes) => std::fs::write(&path, bytes),
            Content::Symlink(target) => std::os::unix::fs::symlink(target, &path),
        };
        written.with_context(|| format!("cannot write {}", path.display()))?;
        if !matches!(entry.content, Content::Symlink(_)) {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_executable_is_refused() {
        // This test executable is linked against the host's C library.
        let this = std::env::current_exe().unwrap();
        let error = read_static_executable(&this).unwrap_err().to_string();
        assert!(error.contains("linked dynamically"), "{error}");
        let not_elf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_elf.path(), "#!/bin/sh\n").unwrap();
        let error = read_static_executable(not_elf.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("not an ELF"), "{error}");
    }

    #[test]
    fn the_layer_lists_parents_first_with_fixed_times_and_owners() {
        let dir = tempfile::tempdir().unwrap();
        // A minimal static ELF: the header alone, with no program headers.
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(64, 0);
        let exe = dir.path().join("exe");
        std::fs::write(&exe, &elf).unwrap();
        let entries = entries(&exe, &exe, None).unwrap();
        let layer = layer_tar(&entries).unwrap();
        assert_eq!(
            layer,
            layer_tar(&entries).unwrap(),
            "the same bytes each time"
        );
        let mut archive = tar::Archive::new(layer.as_slice());
        let mut seen: Vec<String> = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let path = path.trim_end_matches('/').to_owned();
            if let Some((parent, _)) = path.rsplit_once('/') {
                assert!(seen.iter().any(|p| p == parent), "{path} before {parent}");
            }
            assert_eq!(entry.header().mtime().unwrap(), 0);
            let uid = entry.header().uid().unwrap();
            let expected = if path.starts_with("airbyte") || path == "home/airbyte" {
                AIRBYTE_UID
            } else {
                0
            };
            assert_eq!(uid, expected, "{path}");
            seen.push(path);
        }
        for path in ["bin/sh", "usr/local/bin/sluice", "tmp", "etc/passwd"] {
            assert!(
                seen.iter().any(|p| p == path),
                "{path} missing from {seen:?}"
            );
        }
    }
}
