//! `sluice spec` prints exactly the reference's SPEC message for every corpus manifest the
//! reference can load (fixtures/corpus/specs.json, recorded by record_specs.py there).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[test]
fn spec_matches_the_reference_byte_for_byte_on_the_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = root.join("fixtures/corpus");
    assert!(
        corpus.is_dir(),
        "the corpus should be at {} (fixtures/corpus in the repository)",
        corpus.display()
    );
    let expected: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(root.join("fixtures/corpus/specs.json")).unwrap(),
    )
    .unwrap();
    assert!(
        expected.len() >= 60,
        "expected the recorded specs of the corpus"
    );
    let mut differing = Vec::new();
    for (connector, reference) in &expected {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["spec", "--manifest"])
            .arg(corpus.join(connector).join("manifest.yaml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let spec_line = stdout
            .lines()
            .find(|l| l.starts_with(r#"{"type":"SPEC""#))
            .unwrap_or_default();
        if !output.status.success() || spec_line != reference {
            differing.push(connector.clone());
        }
    }
    assert!(
        differing.is_empty(),
        "spec differs from the reference for: {differing:?}"
    );
}
