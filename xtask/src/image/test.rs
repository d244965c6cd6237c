//! `cargo xtask image --test`: unpacks the archive's layer into a temporary directory and runs
//! conformance cases with the image's own `AIRBYTE_ENTRYPOINT` inside that root filesystem alone
//! (`chroot`, as the image's user, with only the image's environment), through `/bin/sh -c`
//! scripts shaped like the platform's launcher's (`ContainerCommandFactory.kt`). Each case's
//! cassette is served on 127.0.0.1 (the chroot shares the host's network), its manifest injected
//! into the config as `__injected_declarative_manifest`, and the output compared with the case's
//! `expected.json` as `cargo xtask conformance` compares it. Then: `spec` without a config (the
//! generic spec), a config with `__injected_components_py` (a `config_error`), and a manifest-only
//! connector's layout (the manifest in the image, read without `--manifest`).

use super::archive::{DOCKER_MANIFEST, digest};
use crate::conformance::normalise::{diff, normalise};
use crate::conformance::{case_name, cases_root, load_spec, pending_reason};
use crate::serve_fixtures::FixtureServer;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use sluice_http::cassette::Cassette;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest one connector command may take in the image before it is killed.
const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(120);
/// Where the platform puts a connector's files for spec, check and discover, and for read.
const CONFIG_DIR: &str = "config";
const SOURCE_DIR: &str = "source";
/// Where a manifest-only connector's image holds its manifest.
const CONNECTOR_MANIFEST_DIR: &str = "airbyte/integration_code/source_declarative_manifest";

/// Fails at once, with what to do, when the test cannot run here.
pub fn preflight() -> anyhow::Result<()> {
    if effective_uid()? != 0 {
        bail!(
            "the image test runs the image's entrypoint inside its own root filesystem with \
             `chroot`, which needs root (CI runs as root): run it as root, or build without --test"
        );
    }
    chroot_program()?;
    Ok(())
}

/// The process's effective user id, from /proc (no unsafe call to geteuid).
fn effective_uid() -> anyhow::Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .context("/proc/self/status has no Uid line")
}

fn chroot_program() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join("chroot"))
        .find(|p| p.is_file())
        .context("no `chroot` program on this machine (coreutils provides it)")
}

/// The image as the test reads it back from the archive.
struct Image {
    layer: Vec<u8>,
    env: Vec<(String, String)>,
    /// `uid:gid` from the config's `User`.
    user: String,
}

pub fn run(archive: &Path, cases: &[String]) -> anyhow::Result<()> {
    let image = read_archive(archive)?;
    let chroot = chroot_program()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut failures = Vec::new();
    let mut passed = 0usize;
    let mut report = |name: String, result: anyhow::Result<()>| match result {
        Ok(()) => {
            passed += 1;
            println!("image: {name}: ok");
        }
        Err(e) => {
            println!("image: {name}: FAILED: {e:#}");
            failures.push(name);
        }
    };
    let root = tempfile::Builder::new()
        .prefix("sluice-image-test-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let runner = Runner {
        chroot,
        root: root.path().join("rootfs"),
        shell_log: root.path().join("shell.log"),
        image: &image,
    };
    unpack_layer(&image.layer, &runner.root)?;
    make_runtime_devices(&runner.root)?;
    for name in cases {
        let dir = cases_root().join(name);
        if !dir.join("case.json").is_file() {
            bail!(
                "no case {name} under {} (a case is a directory with a case.json)",
                cases_root().display()
            );
        }
        if let Some(reason) = pending_reason(&dir) {
            bail!("case {name} is pending ({reason}); choose another");
        }
        for command in load_spec(&dir)?.commands {
            let result = runtime.block_on(runner.conformance(&dir, &command));
            report(format!("{} {command}", case_name(&dir)), result);
        }
    }
    let first = cases_root().join(cases.first().map_or("", String::as_str));
    report(
        "spec without a config (generic spec)".to_owned(),
        runner.generic_spec(),
    );
    report(
        "config with __injected_components_py".to_owned(),
        runner.custom_python(&first),
    );
    report(
        "manifest-only connector layout (spec)".to_owned(),
        runner.connector_manifest_spec(&first),
    );
    println!(
        "\nimage test: {passed} passed, {} failed (root filesystem unpacked from {})",
        failures.len(),
        archive.display()
    );
    if !failures.is_empty() {
        bail!("the image failed: {}", failures.join(", "));
    }
    Ok(())
}

/// Reads the archive the way `docker load` does (its `manifest.json`), checking every blob
/// against its digest.
fn read_archive(path: &Path) -> anyhow::Result<Image> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut files = BTreeMap::new();
    for entry in tar::Archive::new(file).entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && digest(&bytes) != format!("sha256:{hex}")
        {
            bail!("{name} in {} does not match its digest", path.display());
        }
        files.insert(name, bytes);
    }
    let file = |name: &str| {
        files
            .get(name)
            .with_context(|| format!("{} has no {name}", path.display()))
    };
    let manifest: Value = serde_json::from_slice(file(DOCKER_MANIFEST)?)?;
    let config_path = manifest[0]["Config"]
        .as_str()
        .context("manifest.json names no Config")?;
    let layer_path = manifest[0]["Layers"][0]
        .as_str()
        .context("manifest.json names no layer")?;
    let config: Value = serde_json::from_slice(file(config_path)?)?;
    let layer = file(layer_path)?.clone();
    if config["rootfs"]["diff_ids"][0] != digest(&layer) {
        bail!("the config's diff_id is not the layer's digest");
    }
    let env = config["config"]["Env"]
        .as_array()
        .context("the image config has no Env")?
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let user = config["config"]["User"]
        .as_str()
        .unwrap_or("0:0")
        .to_owned();
    Ok(Image { layer, env, user })
}

/// Unpacks the layer as root does: modes and owners kept.
fn unpack_layer(layer: &[u8], root: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(layer);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive
        .unpack(root)
        .with_context(|| format!("cannot unpack the layer into {}", root.display()))
}

/// The device files every OCI runtime creates in a container's `/dev` (the shell itself needs
/// `/dev/null`: it gives background jobs their stdin from it).
fn make_runtime_devices(root: &Path) -> anyhow::Result<()> {
    for (name, minor) in [
        ("null", 3),
        ("zero", 5),
        ("full", 7),
        ("random", 8),
        ("urandom", 9),
    ] {
        let path = root.join("dev").join(name);
        let status = Command::new("mknod")
            .args(["-m", "666"])
            .arg(&path)
            .args(["c", "1", &minor.to_string()])
            .status()
            .context("cannot run mknod")?;
        if !status.success() {
            bail!("mknod {} failed", path.display());
        }
    }
    Ok(())
}

/// Runs connector commands inside the unpacked root filesystem.
struct Runner<'a> {
    chroot: PathBuf,
    /// The unpacked layer.
    root: PathBuf,
    /// The launcher shell's own stdout and stderr, outside the container.
    shell_log: PathBuf,
    image: &'a Image,
}

/// What one command left behind: its stdout, stderr and exit code.
struct Run {
    stdout: String,
    stderr: String,
    exit_code: Option<i32>,
}

impl Run {
    fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    fn describe(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "exit code {:?}; stdout:\n{}\nstderr (end):\n{}",
            self.exit_code,
            self.stdout,
            tail.join("\n")
        )
    }
}

impl Runner<'_> {
    fn uid_gid(&self) -> (u32, u32) {
        let (uid, gid) = self
            .image
            .user
            .split_once(':')
            .unwrap_or((&self.image.user, "0"));
        (uid.parse().unwrap_or(0), gid.parse().unwrap_or(0))
    }

    /// A fresh, empty directory of the container (`config` or `source`), owned by the image's
    /// user as the platform's volumes are writable by it.
    fn fresh_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        self.give_to_user(&dir)?;
        Ok(dir)
    }

    fn give_to_user(&self, path: &Path) -> anyhow::Result<()> {
        let (uid, gid) = self.uid_gid();
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", path.display()))
    }

    fn write(&self, path: &Path, text: &str) -> anyhow::Result<()> {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        self.give_to_user(path)
    }

    /// Runs `command` (spec, check, discover) as the launcher does: in /config, the output in
    /// /config/jobOutput.json. With `config`, `--config /config/connectorConfig.json`.
    fn operation(&self, command: &str, config: Option<&Value>) -> anyhow::Result<Run> {
        let dir = self.fresh_dir(CONFIG_DIR)?;
        let mut args = String::new();
        if let Some(config) = config {
            self.write(&dir.join("connectorConfig.json"), &config.to_string())?;
            args.push_str(" --config /config/connectorConfig.json");
        }
        let run = format!(
            "eval \"$AIRBYTE_ENTRYPOINT {command}{args}\" > /config/jobOutput.json 2> /config/stderr"
        );
        self.launch("/config", &run)?;
        self.collect(&dir, "jobOutput.json")
    }

    /// Runs `read` as the replication pod does: in /source, with its files there.
    fn read(&self, config: &Value, catalog: &str, state: Option<&str>) -> anyhow::Result<Run> {
        let dir = self.fresh_dir(SOURCE_DIR)?;
        self.write(&dir.join("connectorConfig.json"), &config.to_string())?;
        self.write(&dir.join("catalog.json"), catalog)?;
        let mut args =
            " --config /source/connectorConfig.json --catalog /source/catalog.json".to_owned();
        if let Some(state) = state {
            self.write(&dir.join("inputState.json"), state)?;
            args.push_str(" --state /source/inputState.json");
        }
        let run =
            format!("eval \"$AIRBYTE_ENTRYPOINT read{args}\" 2> /source/stderr > /source/stdout");
        self.launch("/source", &run)?;
        self.collect(&dir, "stdout")
    }

    /// The launcher's script around `run`: refuse an image without `AIRBYTE_ENTRYPOINT`, run the
    /// connector in the background, watch for the termination marker, write `exitCode.txt`
    /// through a rename. The sidecar's part (marking the end) closes it, so the shell exits.
    fn launch(&self, dir: &str, run: &str) -> anyhow::Result<()> {
        let script = format!(
            r#"cd {dir}
if [ -z "$AIRBYTE_ENTRYPOINT" ]; then
  echo "AIRBYTE_ENTRYPOINT is not set in the image"
  exit 127
fi
({run}) &
CHILD_PID=$!
(while true; do if [ -f TERMINATED ]; then kill $CHILD_PID; exit 0; fi; sleep 1; done) &
wait $CHILD_PID
EXIT_CODE=$?
echo $EXIT_CODE > TEMP_EXIT_CODE.txt
mv TEMP_EXIT_CODE.txt exitCode.txt
touch TERMINATED
wait
exit $EXIT_CODE
"#
        );
        // The shell's own messages, kept outside the container for the failure report.
        let shell_log = std::fs::File::create(&self.shell_log)?;
        let mut child = Command::new(&self.chroot)
            .arg(format!("--userspec={}", self.image.user))
            .arg(&self.root)
            .args(["/bin/sh", "-c", &script])
            .env_clear()
            .envs(self.image.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(shell_log.try_clone()?))
            .stderr(Stdio::from(shell_log))
            .spawn()
            .with_context(|| format!("cannot run {}", self.chroot.display()))?;
        let started = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if started.elapsed() > COMMAND_TIME_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the command did not end within {COMMAND_TIME_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn collect(&self, dir: &Path, stdout: &str) -> anyhow::Result<Run> {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        let shell = read(&self.shell_log);
        let exit_code = read(&dir.join("exitCode.txt")).trim().parse().ok();
        if exit_code.is_none() {
            bail!(
                "the launcher script wrote no exitCode.txt: it did not run in the image (shell: \
                 {shell}; connector stderr: {})",
                read(&dir.join("stderr"))
            );
        }
        Ok(Run {
            stdout: read(&dir.join(stdout)),
            stderr: format!("{}{shell}", read(&dir.join("stderr"))),
            exit_code,
        })
    }

    /// One command of a conformance case against its cassette served on 127.0.0.1.
    async fn conformance(&self, dir: &Path, command: &str) -> anyhow::Result<()> {
        let spec = load_spec(dir)?;
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected.json"))
                .with_context(|| format!("{} has no expected.json", dir.display()))?,
        )?;
        let expected = expected
            .get(command)
            .with_context(|| format!("expected.json records no {command}"))?;
        let server = FixtureServer::start(Cassette::load(&dir.join("cassette.json"))?, 0).await?;
        let rewriter = server.rewriter();
        let read_text = |name: &str| -> anyhow::Result<String> {
            let text = std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("cannot read {}", dir.join(name).display()))?;
            Ok(rewriter.rewrite(&text))
        };
        let config = injected_config(&read_text("config.json")?, &read_text("manifest.yaml")?)?;
        let catalog = read_text("catalog.json").ok();
        let state = read_text("state.json").ok();
        let command = command.to_owned();
        // The server answers on this runtime while the command runs.
        let run = tokio::task::block_in_place(|| match command.as_str() {
            "read" => self.read(
                &config,
                catalog.as_deref().context("the case has no catalog.json")?,
                state.as_deref(),
            ),
            other => self.operation(other, Some(&config)),
        })?;
        let stdout = rewriter.restore(&run.stdout);
        let actual = normalise(&command, &stdout, run.success(), spec.record_order);
        let differences = diff(expected, &actual, 3);
        if !differences.is_empty() {
            bail!(
                "differs from the reference: {}\n{}",
                differences.join(" | "),
                run.describe()
            );
        }
        Ok(())
    }

    /// `spec` as the platform runs it for a manifest it has not injected yet: the generic spec.
    fn generic_spec(&self) -> anyhow::Result<()> {
        let run = self.operation("spec", None)?;
        let spec = spec_message(&run)?;
        let required = &spec["connectionSpecification"]["required"];
        if !required
            .as_array()
            .is_some_and(|r| r.contains(&json!("__injected_declarative_manifest")))
        {
            bail!("not the generic spec:\n{}", run.describe());
        }
        Ok(())
    }

    /// A config carrying custom Python code ends with a config_error naming the key.
    fn custom_python(&self, dir: &Path) -> anyhow::Result<()> {
        let manifest = std::fs::read_to_string(dir.join("manifest.yaml"))?;
        let config = std::fs::read_to_string(dir.join("config.json"))?;
        let mut config = injected_config(&config, &manifest)?;
        config["__injected_components_py"] = json!("class Custom:\n    pass\n");
        let run = self.operation("check", Some(&config))?;
        let error = run
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
            .with_context(|| format!("no ERROR trace:\n{}", run.describe()))?;
        let error = &error["trace"]["error"];
        let message = error["message"].as_str().unwrap_or_default();
        if run.success()
            || error["failure_type"] != "config_error"
            || !message.contains("__injected_components_py")
        {
            bail!(
                "expected a config_error naming __injected_components_py:\n{}",
                run.describe()
            );
        }
        Ok(())
    }

    /// A manifest-only connector's image (`FROM` this one, its manifest copied in): `spec`
    /// without a config prints the manifest's spec.
    fn connector_manifest_spec(&self, dir: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(dir.join("manifest.yaml"))?;
        let tree = sluice_manifest::yaml::parse(&text)?;
        let expected = sluice_manifest::load_spec(&tree)?
            .context("the case's manifest has no spec")?
            .connection_specification;
        let manifest_dir = self.root.join(CONNECTOR_MANIFEST_DIR);
        std::fs::create_dir_all(&manifest_dir)?;
        std::fs::write(manifest_dir.join("manifest.yaml"), &text)?;
        let run = self.operation("spec", None);
        std::fs::remove_dir_all(&manifest_dir)?;
        let run = run?;
        let spec = spec_message(&run)?;
        if spec["connectionSpecification"] != Value::Object(expected) {
            bail!("not the manifest's spec:\n{}", run.describe());
        }
        Ok(())
    }
}

/// The case's config with its manifest injected as the platform injects it.
fn injected_config(config: &str, manifest: &str) -> anyhow::Result<Value> {
    let mut config: Value = serde_json::from_str(config).context("config.json is not JSON")?;
    let manifest = sluice_manifest::yaml::parse(manifest)?;
    config
        .as_object_mut()
        .context("config.json is not an object")?
        .insert("__injected_declarative_manifest".to_owned(), manifest);
    Ok(config)
}

fn spec_message(run: &Run) -> anyhow::Result<Value> {
    run.stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|m| m["type"] == "SPEC")
        .map(|m| m["spec"].clone())
        .with_context(|| format!("no SPEC message:\n{}", run.describe()))
}
