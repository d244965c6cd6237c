//! `cargo xtask image [--profile dist] [--test]`: the Airbyte platform image, an archive that
//! `docker load` / `podman load` accept (see [`archive`]) and a Dockerfile beside it, replacing the
//! platform's `airbyte/source-declarative-manifest` image for manifest-only connectors. Nothing
//! is pulled from a registry: the root filesystem ([`rootfs`]) is a static (musl) `sluice` and a
//! static busybox.
//!
//! What the platform needs from a connector image (airbytehq/airbyte-platform):
//! - `airbyte-workload-launcher/src/main/kotlin/pods/factories/ConnectorPodFactory.kt` and
//!   `ReplicationContainerFactory.kt` start the connector container with `sh -c SCRIPT` (the
//!   image's own `ENTRYPOINT` is overridden), working directory `/config` (spec, check,
//!   discover) or `/source` (read), as user 1000:1000 when workloads are rootless
//!   (`context/WorkloadSecurityContextProvider.kt`).
//! - The scripts (`pods/factories/ContainerCommandFactory.kt`) fail with exit code 127 unless
//!   the image sets `AIRBYTE_ENTRYPOINT`, run `eval "$AIRBYTE_ENTRYPOINT <command> --config
//!   /config/connectorConfig.json ..."` (read: `--catalog /source/catalog.json [--state
//!   /source/inputState.json]`, stdout and stderr into named pipes) in the background, watch for a
//!   `TERMINATED` file with `[`, `sleep` and `kill`, and write `exitCode.txt` with `echo` and `mv`.
//! - The manifest comes in the config under `__injected_declarative_manifest`
//!   (`airbyte-commons-server/.../DeclarativeSourceManifestInjector.kt`), custom Python under
//!   `__injected_components_py`, which sluice refuses with a `config_error`.
//! - The Python image (airbytehq/airbyte-python-cdk, `Dockerfile`) sets `AIRBYTE_ENTRYPOINT` and
//!   `ENTRYPOINT` to its program, works in `/airbyte/integration_code` as user `airbyte`
//!   (1000:1000). Manifest-only connectors are built `FROM` it with their manifest at
//!   `/airbyte/integration_code/source_declarative_manifest/manifest.yaml`, which sluice reads
//!   when it is given no `--manifest`. Connector images carry the labels `io.airbyte.name` and
//!   `io.airbyte.version` (their repository and tag).

mod archive;
mod rootfs;
mod test;

use crate::workspace;
use anyhow::{Context, bail};
use archive::ImageConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target of the image's static `sluice`.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The archive's file name under the output directory.
const ARCHIVE_NAME: &str = "sluice-image.tar";
/// The folder of the Dockerfile's build context holding the root filesystem.
const ROOTFS_DIR: &str = "rootfs";
/// Where a static busybox is looked for (Debian's `busybox-static` installs `/bin/busybox`).
const BUSYBOX_CANDIDATES: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];
/// The cases the image test runs by default: pagination with a read, an incremental read from an
/// input state, and a real connector's check, discover and read.
const DEFAULT_TEST_CASES: &[&str] = &[
    "paginate-offset-increment",
    "cursor-datetime-clamping-day-with-state",
    "real_todoist",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cargo profile `sluice` is built with: `dist` (fat LTO, what ships; ~5 minutes on 2
    /// cores) or `release` (quicker, what CI uses).
    #[arg(long, default_value = "dist")]
    profile: String,
    /// The `repository:tag` the loaded image gets (default:
    /// `sluice/source-declarative-manifest:<sluice's version>`).
    #[arg(long)]
    tag: Option<String>,
    /// A static busybox to provide `/bin/sh` and the tools the platform's scripts use (default:
    /// /bin/busybox or /usr/bin/busybox, from Debian's `busybox-static`).
    #[arg(long, value_name = "PATH")]
    busybox: Option<PathBuf>,
    /// Where the archive, the Dockerfile and its root filesystem are written (default:
    /// `image/` under the target directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Then unpack the archive and run conformance cases with the image's entrypoint under
    /// `chroot`, as the platform would start it (needs root).
    #[arg(long)]
    test: bool,
    /// A case under fixtures/conformance/ for --test (repeatable; default: a pagination case, one
    /// with an input state and a real connector).
    #[arg(long = "case", value_name = "NAME", requires = "test")]
    cases: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.test {
        // Before the long build: a test that cannot run should say so at once.
        test::preflight()?;
    }
    let sluice = build_sluice(&args.profile)?;
    let busybox = find_busybox(args.busybox.as_deref())?;
    let version = sluice_version(&sluice)?;
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| format!("sluice/source-declarative-manifest:{version}"));
    let config = image_config(&tag);
    let ca_bundle = rootfs::host_ca_bundle();
    if ca_bundle.is_none() {
        eprintln!(
            "warning: no /etc/ssl/certs/ca-certificates.crt on this machine: the image relies on \
             the roots compiled into sluice (install Debian's ca-certificates to include it)"
        );
    }
    let entries = rootfs::entries(&sluice, &busybox, ca_bundle.as_deref())?;
    let layer = rootfs::layer_tar(&entries)?;

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace::target_dir().join("image"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let archive_path = out.join(ARCHIVE_NAME);
    let digest = archive::write(&archive_path, &config, &layer)?;
    rootfs::write_dir(&entries, &out.join(ROOTFS_DIR))?;
    let owned: Vec<&str> = entries
        .iter()
        .filter(|e| e.uid == rootfs::AIRBYTE_UID)
        .map(|e| e.path.as_str())
        .collect();
    let dockerfile = out.join("Dockerfile");
    std::fs::write(
        &dockerfile,
        archive::dockerfile(&config, ROOTFS_DIR, &owned),
    )
    .with_context(|| format!("cannot write {}", dockerfile.display()))?;

    let archive_size = std::fs::metadata(&archive_path)?.len();
    println!(
        "wrote {} ({tag}, {digest}): {} (image size {} uncompressed; sluice {}, busybox {})",
        archive_path.display(),
        megabytes(archive_size),
        megabytes(layer.len() as u64),
        megabytes(std::fs::metadata(&sluice)?.len()),
        megabytes(std::fs::metadata(&busybox)?.len()),
    );
    println!(
        "wrote {} (build context: {})",
        dockerfile.display(),
        out.display()
    );
    println!(
        "load it with `docker load -i {0}` or `podman load -i {0}`",
        archive_path.display()
    );
    if args.test {
        let cases = if args.cases.is_empty() {
            DEFAULT_TEST_CASES.iter().map(|c| (*c).to_owned()).collect()
        } else {
            args.cases.clone()
        };
        test::run(&archive_path, &cases)?;
    }
    Ok(())
}

/// What the platform reads from the image (see the module's notes).
fn image_config(tag: &str) -> ImageConfig {
    let (repository, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let labels = BTreeMap::from([
        ("io.airbyte.name".to_owned(), repository.to_owned()),
        ("io.airbyte.version".to_owned(), version.to_owned()),
        ("org.opencontainers.image.title".to_owned(), "sluice".to_owned()),
        (
            "org.opencontainers.image.description".to_owned(),
            "Runs Airbyte low-code (declarative) manifests; replaces airbyte/source-declarative-manifest for manifest-only connectors".to_owned(),
        ),
        ("org.opencontainers.image.version".to_owned(), version.to_owned()),
    ]);
    ImageConfig {
        tag: tag.to_owned(),
        env: vec![
            (
                "PATH".to_owned(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            ),
            (
                "AIRBYTE_ENTRYPOINT".to_owned(),
                rootfs::SLUICE_PATH.to_owned(),
            ),
        ],
        entrypoint: vec![rootfs::SLUICE_PATH.to_owned()],
        working_dir: rootfs::WORKING_DIR.to_owned(),
        user: format!("{0}:{0}", rootfs::AIRBYTE_UID),
        labels,
    }
}

/// Builds the static `sluice` and returns its path.
fn build_sluice(profile: &str) -> anyhow::Result<PathBuf> {
    println!("building sluice for {MUSL_TARGET} with the {profile} profile");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "-p",
            "sluice-runner",
            "--bin",
            "sluice",
        ])
        .args(["--profile", profile, "--target", MUSL_TARGET])
        // The image's binary carries no symbols or line tables: 22 MB instead of 75 MB with the
        // release profile. Only this target's artifacts are built so, not the host's.
        .arg("--config")
        .arg(format!("profile.{profile}.strip=\"symbols\""))
        .arg("--config")
        .arg(format!("profile.{profile}.debug=false"))
        .current_dir(workspace::root())
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!(
            "building sluice for {MUSL_TARGET} failed; it needs the target \
             (`rustup target add {MUSL_TARGET}`) and a musl C compiler for mimalloc and ring \
             (Debian: `apt-get install musl-tools`)"
        );
    }
    let profile_dir = if profile == "dev" { "debug" } else { profile };
    Ok(workspace::target_dir()
        .join(MUSL_TARGET)
        .join(profile_dir)
        .join("sluice"))
}

fn find_busybox(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    BUSYBOX_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no busybox at {}: install a static one (Debian: `apt-get install busybox-static`) \
                 or pass --busybox PATH",
                BUSYBOX_CANDIDATES.join(" or ")
            )
        })
}

/// The version `sluice --version` prints (the static binary runs on any x86-64 Linux host).
fn sluice_version(sluice: &Path) -> anyhow::Result<String> {
    let output = Command::new(sluice)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", sluice.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .with_context(|| format!("{} --version printed {text:?}", sluice.display()))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}
