//! The conformance cases the `state` and `config` targets run, loaded once per process.

use serde_json::Value;
use sluice_http::Cassette;
use sluice_manifest::Manifest;
use sluice_protocol::ConfiguredAirbyteCatalog;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// `fixtures/conformance` of this checkout.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/conformance")
}

/// A conformance case's inputs.
#[derive(Debug)]
pub(crate) struct Case {
    pub(crate) manifest: Manifest,
    pub(crate) config: Value,
    pub(crate) cassette: Cassette,
    pub(crate) catalog: Option<ConfiguredAirbyteCatalog>,
}

/// Which cases a target can run. Cases that wait (retries, rate limits, polled jobs) are left
/// out: a fuzzer needs quick runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Cases with an incremental stream in their catalog, read with a random state.
    Incremental,
    /// Cases whose manifest has a spec, given a random config.
    WithSpec,
}

impl Kind {
    fn admits(self, dir: &Path) -> bool {
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        let manifest = read("manifest.yaml");
        let cassette = read("cassette.json");
        let waits = [
            "AsyncRetriever",
            "api_budget",
            "backoff_strategies",
            "rate_limit",
        ]
        .iter()
        .any(|word| manifest.contains(word))
            || cassette.contains("\"status\": 5")
            || cassette.contains("\"status\": 429");
        !waits
            && match self {
                Kind::Incremental => read("catalog.json").contains("\"incremental\""),
                Kind::WithSpec => manifest.contains("connection_specification"),
            }
    }
}

/// The names of the cases of `kind` in `dir`, sorted.
pub(crate) fn names(dir: &Path, kind: Kind) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("manifest.yaml").is_file() && kind.admits(&entry.path()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

static NAMES: LazyLock<Mutex<HashMap<Kind, Arc<Vec<String>>>>> = LazyLock::new(Default::default);
static LOADED: LazyLock<Mutex<HashMap<String, Option<Arc<Case>>>>> =
    LazyLock::new(Default::default);

/// The case of `kind` named `name`, or, for any other name, one of them chosen by the name's
/// bytes (so a mutated name still runs a case).
pub(crate) fn case(kind: Kind, name: &str) -> Option<Arc<Case>> {
    let names = NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(kind)
        .or_insert_with(|| Arc::new(names(&conformance_dir(), kind)))
        .clone();
    if names.is_empty() {
        return None;
    }
    let chosen = match names.iter().find(|n| n.as_str() == name) {
        Some(found) => found,
        None => {
            let hash = name.bytes().fold(0usize, |h, b| {
                h.wrapping_mul(31).wrapping_add(usize::from(b))
            });
            &names[hash % names.len()]
        }
    };
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loaded
        .entry(chosen.clone())
        .or_insert_with(|| load(&conformance_dir().join(chosen)).map(Arc::new))
        .clone()
}

fn load(dir: &Path) -> Option<Case> {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let manifest = sluice_manifest::load_str(&read("manifest.yaml")?).ok()?;
    let config = serde_json::from_str(&read("config.json")?).ok()?;
    let cassette = Cassette::from_json_str(&read("cassette.json")?).ok()?;
    let catalog =
        read("catalog.json").and_then(|text| sluice_protocol::parse_configured_catalog(&text).ok());
    Some(Case {
        manifest,
        config,
        cassette,
        catalog,
    })
}
