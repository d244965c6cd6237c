//! Every real manifest of the corpus loads into the typed model, and the model serializes back
//! to a tree that reads into the same model.

use serde_json::Value;
use sluice_manifest::model::DeclarativeSource;
use std::path::{Path, PathBuf};

/// `fixtures/corpus` in the repository. Missing is a failure, never a skip.
fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    assert!(
        dir.is_dir(),
        "the corpus should be at {} (fixtures/corpus in the repository)",
        dir.display()
    );
    dir
}

fn corpus_manifests() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus should be at {}: {e}", dir.display()));
    let mut manifests: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("manifest.yaml"))
        .filter(|path| path.is_file())
        .collect();
    manifests.sort();
    manifests
}

/// The model written back as JSON reads into the same model.
fn assert_round_trips(model: &DeclarativeSource, what: &str) {
    let written = serde_json::to_value(model).unwrap();
    let reread = DeclarativeSource::from_resolved(&written)
        .unwrap_or_else(|e| panic!("{what}: the serialized model does not read back: {e}"));
    assert_eq!(&reread, model, "{what}: the model changed on a round trip");
}

#[test]
fn every_corpus_manifest_loads_into_the_model() {
    let manifests = corpus_manifests();
    assert_eq!(manifests.len(), 65, "the corpus holds 65 manifests");
    let mut failures = Vec::new();
    for path in &manifests {
        let name = path
            .parent()
            .and_then(Path::file_name)
            .unwrap()
            .to_string_lossy();
        match sluice_manifest::load_file(path) {
            Ok(manifest) => {
                let streams = manifest.model.streams.as_ref().map_or(0, Vec::len);
                let dynamic = manifest.model.dynamic_streams.as_ref().map_or(0, Vec::len);
                assert!(streams + dynamic > 0, "{name}: no streams in the model");
                assert_round_trips(&manifest.model, &name);
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "manifests that do not load:\n{}",
        failures.join("\n")
    );
}

/// Every connector's `metadata.yaml` names the licence fixtures/corpus/README.md states for the
/// corpus (ELv2, whose terms are in fixtures/corpus/LICENSE-ELv2): a connector under another
/// licence needs the README (and a licence file) updated first.
#[test]
fn every_corpus_connector_is_under_the_licence_the_readme_states() {
    let mut others = Vec::new();
    for path in corpus_manifests() {
        let metadata = path.with_file_name("metadata.yaml");
        let text = std::fs::read_to_string(&metadata)
            .unwrap_or_else(|e| panic!("{}: {e}", metadata.display()));
        let licence = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("license:"))
            .map(|l| l.trim().trim_matches(['"', '\'']).to_string());
        if !licence
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("ELv2"))
        {
            others.push(format!("{}: {licence:?}", metadata.display()));
        }
    }
    assert!(
        others.is_empty(),
        "connectors not under ELv2 (update fixtures/corpus/README.md):\n{}",
        others.join("\n")
    );
    assert!(corpus_dir().join("LICENSE-ELv2").is_file());
}

/// The reference's own resolved trees (dumped from airbyte-cdk into tests/data) read into the
/// model, independently of our resolution stages.
#[test]
fn reference_resolved_trees_read_into_the_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".resolved.json") else {
            continue;
        };
        // Only real connectors: the other trees are made-up corner cases of resolution.
        if !corpus_dir().join(stem).join("manifest.yaml").is_file() {
            continue;
        }
        let tree: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let model =
            DeclarativeSource::from_resolved(&tree).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_round_trips(&model, &name);
        count += 1;
    }
    assert!(count > 0, "no reference trees in {}", dir.display());
}
