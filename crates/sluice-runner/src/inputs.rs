//! Reading the command's input files, each failure a config error naming the file.

use crate::cli::CommonArgs;
use serde_json::Value;
use sluice_engine::EngineError;
use sluice_http::{HyperTransport, RecordingTransport, ReplayTransport, Transport};
use sluice_manifest::{Manifest, ManifestError, ManifestSource};
use sluice_protocol::{AirbyteStateMessage, ConfiguredAirbyteCatalog};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The config key the Airbyte platform puts the manifest under.
pub const INJECTED_MANIFEST_KEY: &str = "__injected_declarative_manifest";

/// The config key the Airbyte platform puts a connector's custom Python components under.
pub const INJECTED_COMPONENTS_KEY: &str = "__injected_components_py";

fn read_json(path: &Path, what: &str) -> Result<Value, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EngineError::config(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        EngineError::config(format!(
            "the {what} file {} is not valid JSON: {e}",
            path.display()
        ))
    })
}

/// The config: a JSON object.
pub fn read_config(path: &Path) -> Result<Value, EngineError> {
    let config = read_json(path, "config")?;
    if !config.is_object() {
        return Err(EngineError::config(format!(
            "the config file {} must hold a JSON object",
            path.display()
        )));
    }
    Ok(config)
}

/// A manifest ready to run, with what its errors need to point into it.
#[derive(Debug)]
pub struct LoadedManifest {
    pub manifest: Manifest,
    /// The folder relative schema files are read from (the manifest file's).
    pub dir: Option<PathBuf>,
    /// The manifest file's text, to give errors a line and column; `None` for a manifest
    /// injected in the config.
    pub source: Option<Arc<ManifestSource>>,
}

/// The manifest, from `--manifest` or from the config's injected manifest. Errors in a manifest
/// file name it with the line and column (`manifest.yaml:42:7: streams[2].retriever: ...`).
pub fn load_manifest(path: Option<&Path>, config: &Value) -> Result<LoadedManifest, EngineError> {
    let (tree, source) = manifest_tree(path, config)?;
    let manifest = sluice_manifest::load_value(tree).map_err(|e| manifest_error(e, &source))?;
    Ok(LoadedManifest {
        manifest,
        dir: path.and_then(Path::parent).map(Path::to_path_buf),
        source: source.map(Arc::new),
    })
}

/// The manifest's `spec` only, resolved without the rest of the manifest.
pub fn load_spec(
    path: Option<&Path>,
    config: &Value,
) -> Result<Option<sluice_manifest::model::Spec>, EngineError> {
    let (tree, source) = manifest_tree(path, config)?;
    sluice_manifest::load_spec(&tree).map_err(|e| manifest_error(e, &source))
}

fn manifest_error(error: ManifestError, source: &Option<ManifestSource>) -> EngineError {
    match source {
        Some(source) => EngineError {
            message: source.describe(&error),
            // Located already.
            path: None,
            ..EngineError::from(error)
        },
        None => EngineError::from(error),
    }
}

/// The manifest as parsed YAML (or as injected in the config), not resolved yet, and the
/// file's text.
fn manifest_tree(
    path: Option<&Path>,
    config: &Value,
) -> Result<(Value, Option<ManifestSource>), EngineError> {
    refuse_custom_python(config)?;
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|e| {
            EngineError::config(format!("cannot read the manifest {}: {e}", path.display()))
        })?;
        let source = ManifestSource::new(path.display().to_string(), text);
        let tree = sluice_manifest::yaml::parse(source.text())
            .map_err(|e| EngineError::config(source.describe(&e)))?;
        return Ok((tree, Some(source)));
    }
    match config.get(INJECTED_MANIFEST_KEY) {
        Some(tree @ Value::Object(_)) => Ok((tree.clone(), None)),
        Some(_) => Err(EngineError::config(format!(
            "Invalid config: `{INJECTED_MANIFEST_KEY}` should be a dictionary"
        ))),
        None => Err(EngineError::config(format!(
            "no manifest: pass --manifest PATH or put the manifest in the config under `{INJECTED_MANIFEST_KEY}`"
        ))),
    }
}

/// A config carrying custom Python code (the reference runs it when the key holds anything
/// truthy) is refused before the manifest is read: sluice could only misbehave without it.
fn refuse_custom_python(config: &Value) -> Result<(), EngineError> {
    let carries_code = match config.get(INJECTED_COMPONENTS_KEY) {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Object(map)) => !map.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Bool(true)) => true,
    };
    if carries_code {
        return Err(EngineError::config(format!(
            "the config carries custom Python components under `{INJECTED_COMPONENTS_KEY}`: \
             sluice runs no custom Python code; run this connector with the Python \
             source-declarative-manifest image instead"
        )));
    }
    Ok(())
}

/// The configured catalog.
pub fn read_catalog(path: &Path) -> Result<ConfiguredAirbyteCatalog, EngineError> {
    let value = read_json(path, "catalog")?;
    serde_json::from_value(value).map_err(|e| {
        EngineError::config(format!(
            "the catalog file {} is not a configured catalog: {e}",
            path.display()
        ))
    })
}

/// The input state: a list of state messages.
pub fn read_state(path: &Path) -> Result<Vec<AirbyteStateMessage>, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EngineError::config(format!(
            "cannot read the state file {}: {e}",
            path.display()
        ))
    })?;
    sluice_protocol::parse_input_state(&text).map_err(|e| {
        EngineError::config(match e {
            sluice_protocol::ProtocolError::Syntax { detail, .. } => format!(
                "the state file {} is not valid JSON: {detail}",
                path.display()
            ),
            other => format!("the state file {} cannot be used: {other}", path.display()),
        })
    })
}

/// The transport the source sends requests through, and the recorder to save when recording.
pub struct Transports {
    pub transport: Arc<dyn Transport>,
    pub recorder: Option<Arc<Recorder>>,
}

/// Chooses the transport from the command's flags: a cassette to replay, a recording, or the network.
/// The network client with the command line's time limits.
fn network(common: &CommonArgs) -> HyperTransport {
    HyperTransport::new(common.request_timeout)
        .with_stall_timeout(common.stall_timeout)
        .with_max_response_bytes(common.max_response_size)
}

pub fn transport(common: &CommonArgs) -> Result<Transports, EngineError> {
    // The decoders' gzip and zip files are held to the same limit as the client's bodies.
    sluice_records::set_max_inflated_bytes(common.max_response_size);
    if let Some(path) = &common.replay {
        // A case folder stands for the cassette inside it.
        let path = if path.is_dir() {
            path.join("cassette.json")
        } else {
            path.clone()
        };
        let replay = ReplayTransport::from_file(&path).map_err(|e| {
            EngineError::config(format!(
                "cannot replay the cassette {}: {e}",
                path.display()
            ))
        })?;
        return Ok(Transports {
            transport: Arc::new(replay),
            recorder: None,
        });
    }
    if common.record_cassette.is_some() {
        let recorder = Arc::new(RecordingTransport::new(network(common)));
        let transport = Arc::new(SharedRecorder(Arc::clone(&recorder)));
        return Ok(Transports {
            transport,
            recorder: Some(recorder),
        });
    }
    Ok(Transports {
        transport: Arc::new(network(common)),
        recorder: None,
    })
}

/// A recording transport over the network.
pub type Recorder = RecordingTransport<HyperTransport>;

/// Lets the runner keep a handle on the recorder while the source owns the transport.
#[derive(Debug)]
struct SharedRecorder(Arc<Recorder>);

impl Transport for SharedRecorder {
    fn send<'a>(
        &'a self,
        request: &'a sluice_http::HttpRequest,
    ) -> sluice_http::TransportFuture<'a> {
        self.0.send(request)
    }
}

/// Writes the recorded cassette with `secrets` redacted ([`sluice_engine::Source::secrets`]: the
/// config's `airbyte_secret` fields and everything the authenticators obtained).
pub fn save_recording(
    recorder: &Recorder,
    path: &Path,
    secrets: &[String],
) -> Result<(), EngineError> {
    recorder.save(path, secrets).map_err(|e| {
        EngineError::system(format!("cannot write the cassette {}: {e}", path.display()))
    })
}
