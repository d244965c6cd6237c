//! Every template in the real manifests of fixtures/corpus (or `$SLUICE_CORPUS`) compiles.

use std::path::PathBuf;

use serde_json::Value;
use sluice_interp::Template;

/// `$SLUICE_CORPUS`, else `fixtures/corpus` in the repository. Missing is a failure, never a skip.
fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("SLUICE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus"));
    assert!(dir.is_dir(), "the corpus should be at {}", dir.display());
    dir
}

fn collect_templates(value: &Value, out: &mut Vec<String>) {
    let is_template = |s: &str| s.contains("{{") || s.contains("{%");
    match value {
        Value::String(s) if is_template(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_templates(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                if is_template(key) {
                    out.push(key.clone());
                }
                collect_templates(v, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_corpus_template_compiles() {
    let dir = corpus_dir();
    let mut templates = Vec::new();
    let mut manifests = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory is readable") {
        let path = entry.expect("corpus entry").path().join("manifest.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let manifest: Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        collect_templates(&manifest, &mut templates);
        manifests += 1;
    }
    assert!(manifests > 0, "no manifests under {}", dir.display());
    assert!(!templates.is_empty());
    let failures: Vec<String> = templates
        .iter()
        .filter_map(|source| Template::new(source).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} templates do not compile:\n{}",
        failures.len(),
        templates.len(),
        failures.join("\n")
    );
}
