//! Over the 65 real manifests of `../shared/corpus`: `sluice validate` says a manifest runs
//! exactly when the engine builds it, and otherwise names every component it cannot run.

use sluice_engine::{Source, SourceOptions, manifest_problems, unsupported_components};
use std::path::PathBuf;

/// The config `validate` builds with: the spec's sample (see `manifest_problems`).
fn sample_config(manifest: &sluice_manifest::Manifest) -> serde_json::Value {
    sluice_engine::sample_config(manifest)
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    dir.is_dir().then_some(dir)
}

#[test]
fn validate_agrees_with_what_the_engine_builds() {
    let Some(dir) = corpus_dir() else {
        eprintln!("skipped: ../shared/corpus is not beside the repository");
        return;
    };
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("manifest.yaml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.sort();
    assert!(
        manifests.len() >= 65,
        "expected the whole corpus, found {}",
        manifests.len()
    );
    let mut runnable = Vec::new();
    for path in &manifests {
        let manifest =
            sluice_manifest::load_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let unsupported = unsupported_components(&manifest);
        let problems = manifest_problems(&manifest);
        let config = sample_config(&manifest);
        let built = Source::new(manifest, config, SourceOptions::default());
        match (problems.is_empty(), built) {
            (true, Ok(_)) => runnable.push(path.clone()),
            (true, Err(e)) => panic!(
                "{}: validate says it runs, but the engine says: {e}",
                path.display()
            ),
            (false, Ok(_)) => panic!(
                "{}: the engine built a manifest validate refuses",
                path.display()
            ),
            (false, Err(e)) => {
                for component in &unsupported {
                    assert!(
                        e.message.contains(&component.path.to_string()),
                        "{}: the engine's error does not name {component}: {e}",
                        path.display()
                    );
                }
            }
        }
    }
    eprintln!(
        "{} of {} corpus manifests run today: {runnable:?}",
        runnable.len(),
        manifests.len()
    );
}
