//! The resolved tree equals the reference's (airbyte-cdk's reference resolution and component
//! transformation, dumped by tests/data/dump_reference.py), key order included.

use serde_json::Value;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn resolve_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let tree = sluice_manifest::yaml::parse(&text).unwrap();
    sluice_manifest::resolve_value(tree).unwrap()
}

fn reference_tree(name: &str) -> Value {
    let text = std::fs::read_to_string(data(&format!("{name}.resolved.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Equal as JSON and in key order (serde_json's map equality ignores order).
fn assert_same_tree(ours: &Value, theirs: &Value, what: &str) {
    assert_eq!(
        ours, theirs,
        "{what}: the resolved tree differs from the reference's"
    );
    assert_eq!(
        serde_json::to_string(ours).unwrap(),
        serde_json::to_string(theirs).unwrap(),
        "{what}: same tree, but the key order differs from the reference's"
    );
}

#[test]
fn corner_cases_match_the_reference() {
    let ours = resolve_file(&data("propagation_edge_cases.yaml"));
    assert_same_tree(
        &ours,
        &reference_tree("propagation_edge_cases"),
        "propagation_edge_cases.yaml",
    );
}

#[test]
fn modern_tutorial_matches_the_reference() {
    let ours = resolve_file(&data("tutorial_modern.yaml"));
    assert_same_tree(
        &ours,
        &reference_tree("tutorial_modern"),
        "tutorial_modern.yaml",
    );
}

#[test]
fn corpus_manifests_match_the_reference() {
    // The corpus lives in fixtures/corpus in the repository.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    for name in [
        "xkcd",
        "zapier-supported-storage",
        "feishu",
        "dockerhub",
        "plausible",
    ] {
        let manifest = corpus.join(name).join("manifest.yaml");
        assert!(
            manifest.exists(),
            "corpus manifest {} is missing",
            manifest.display()
        );
        assert_same_tree(&resolve_file(&manifest), &reference_tree(name), name);
    }
}
