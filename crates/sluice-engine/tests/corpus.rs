//! Over the 65 real manifests of `fixtures/corpus`: `sluice validate` says a manifest runs
//! exactly when the engine builds it, and otherwise names every component it cannot run.
//!
//! It also reports how many manifests run and, for each one that does not, what stops it: the
//! components `unsupported_components` lists (type and path), or else the problems
//! `manifest_problems` finds. Run it with `--nocapture` to see the report.
//!
//! The report rests only on the public `manifest_problems` / `unsupported_components` /
//! `Source::new`, so it keeps working as the engine learns new components and as it comes to
//! build manifests partially (a stream it cannot run no longer stopping the others).

use sluice_engine::{
    Source, SourceOptions, Unsupported, manifest_problems, unsupported_components,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config `validate` builds with: the spec's sample (see `manifest_problems`).
fn sample_config(manifest: &sluice_manifest::Manifest) -> serde_json::Value {
    sluice_engine::sample_config(manifest)
}

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

/// The connector's name: its folder in the corpus.
fn connector(path: &Path) -> String {
    path.parent()
        .and_then(Path::file_name)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// One component that stops a manifest: its type (and class), its path and its stream.
fn describe(component: &Unsupported) -> String {
    let mut line = component.component_type.clone();
    if let Some(class) = &component.class_name {
        line.push_str(&format!(" (class {class})"));
    }
    line.push_str(&format!(" at {}", component.path));
    if let Some(stream) = &component.stream {
        line.push_str(&format!(" in stream '{stream}'"));
    }
    line
}

/// What validate says about one manifest, and whether the engine builds it.
struct Outcome {
    connector: String,
    unsupported: Vec<Unsupported>,
    problems: Vec<String>,
    built: bool,
    /// The manifest's streams, and how many of them run (the others are kept aside).
    streams: usize,
    runnable_streams: usize,
}

/// Whether a component sluice cannot run refuses the whole manifest: one outside the streams,
/// their definitions, `dynamic_streams` (whose streams are then missing) and `check` (which then
/// fails).
fn refuses_the_manifest(component: &Unsupported) -> bool {
    !matches!(
        component.path.top_key(),
        Some("streams" | "definitions" | "dynamic_streams" | "check")
    )
}

impl Outcome {
    fn runs(&self) -> bool {
        self.problems.is_empty()
    }
}

#[test]
fn validate_agrees_with_what_the_engine_builds() {
    let dir = corpus_dir();
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path().join("manifest.yaml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.sort();
    assert!(
        manifests.len() >= 65,
        "expected the whole corpus in {}, found {} manifests",
        dir.display(),
        manifests.len()
    );

    let mut outcomes = Vec::new();
    for path in &manifests {
        let connector = connector(path);
        let manifest =
            sluice_manifest::load_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let unsupported = unsupported_components(&manifest);
        let problems: Vec<String> = manifest_problems(&manifest)
            .into_iter()
            .map(|p| p.message)
            .collect();
        let config = sample_config(&manifest);
        let declared_streams = manifest.model.streams.iter().flatten().count();
        let built = Source::new(manifest, config, SourceOptions::default());
        let (streams, runnable_streams) = match &built {
            Ok(source) => {
                let streams = source.configured_catalog_all_full_refresh().streams.len();
                (streams, streams - source.unrunnable_streams().len())
            }
            Err(_) => (declared_streams, 0),
        };

        // A component validate cannot run is always one of its problems, named by its path.
        for component in &unsupported {
            let path = component.path.to_string();
            assert!(
                problems.iter().any(|p| p.contains(&path)),
                "{connector}: validate's problems do not name {component}: {problems:?}"
            );
        }
        match (problems.is_empty(), &built) {
            (true, Ok(_)) => {}
            (true, Err(e)) => {
                panic!("{connector}: validate says it runs, but the engine says: {e}")
            }
            (false, Ok(_)) => {
                // The engine may build a manifest whose problems stay inside streams (it leaves
                // those streams out: the report says so), never one with an unsupported
                // component outside every stream.
                let outside: Vec<String> = unsupported
                    .iter()
                    .filter(|c| refuses_the_manifest(c))
                    .map(describe)
                    .collect();
                assert!(
                    outside.is_empty(),
                    "{connector}: the engine built a manifest with unsupported components \
                     outside its streams: {outside:?}"
                );
            }
            (false, Err(e)) => {
                // The engine's refusal names what stops it: every unsupported component outside
                // the streams (it stops the whole manifest), and at least one of them all. (An
                // engine that builds streams one by one may stop at the first manifest-wide
                // one, or name only the streams that stop it.)
                let named = |c: &Unsupported| e.message.contains(&c.path.to_string());
                for component in unsupported.iter().filter(|c| refuses_the_manifest(c)) {
                    assert!(
                        named(component),
                        "{connector}: the engine's error does not name {component}: {e}"
                    );
                }
                // Or a stream failed to build with the sample config, which refuses the
                // whole manifest as in the reference; validate reports the same error.
                assert!(
                    unsupported.is_empty()
                        || unsupported.iter().any(named)
                        || problems.contains(&e.message),
                    "{connector}: the engine's error names none of {:?}: {e}",
                    unsupported.iter().map(describe).collect::<Vec<_>>()
                );
            }
        }
        outcomes.push(Outcome {
            connector,
            unsupported,
            problems,
            built: built.is_ok(),
            streams,
            runnable_streams,
        });
    }

    report(&outcomes);
}

/// Prints which manifests run and what stops the others, ending with the summary line.
fn report(outcomes: &[Outcome]) {
    let runnable: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.runs())
        .map(|o| o.connector.as_str())
        .collect();
    let summary = format!(
        "corpus: {} of {} manifests run (validate finds no problem and the engine builds them)",
        runnable.len(),
        outcomes.len()
    );
    let streams: usize = outcomes.iter().map(|o| o.streams).sum();
    let runnable_streams: usize = outcomes.iter().map(|o| o.runnable_streams).sum();
    let summary = format!(
        "{summary}; {runnable_streams} of {streams} streams run (a stream that needs a component sluice cannot run is left out, the others run)"
    );
    eprintln!("{summary}");
    eprintln!("run: {}", runnable.join(", "));

    // How many manifests each component type stops, most first.
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in outcomes.iter().filter(|o| !o.runs()) {
        let mut types: Vec<&str> = outcome
            .unsupported
            .iter()
            .map(|c| c.component_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        for component_type in types {
            *by_type.entry(component_type).or_default() += 1;
        }
    }
    let mut by_type: Vec<(&str, usize)> = by_type.into_iter().collect();
    by_type.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if !by_type.is_empty() {
        eprintln!("components that stop manifests (type: manifests):");
        for (component_type, count) in &by_type {
            eprintln!("  {component_type}: {count}");
        }
    }

    eprintln!("what stops the others:");
    for outcome in outcomes.iter().filter(|o| !o.runs()) {
        let partly = if outcome.built {
            " (Source::new still builds it)"
        } else {
            ""
        };
        if outcome.unsupported.is_empty() {
            eprintln!(
                "  {}{partly}: {} problem(s)",
                outcome.connector,
                outcome.problems.len()
            );
            for problem in &outcome.problems {
                eprintln!("    - {problem}");
            }
        } else {
            eprintln!(
                "  {}{partly}: {} unsupported component(s)",
                outcome.connector,
                outcome.unsupported.len()
            );
            for component in &outcome.unsupported {
                eprintln!("    - {}", describe(component));
            }
        }
    }
    eprintln!("{summary}");
}

/// Dynamic streams run: in no manifest of the corpus (Airtable, Google Sheets, HubSpot, Criteo,
/// Pinterest, ...) is a component of dynamic streams or of their check refused; what is refused
/// under `dynamic_streams` is a component that would be refused in any stream (custom Python
/// code, or one sluice does not run yet), and validate finds no other problem there.
#[test]
fn dynamic_stream_components_are_never_refused() {
    const DYNAMIC: &[&str] = &[
        "DynamicDeclarativeStream",
        "HttpComponentsResolver",
        "ConfigComponentsResolver",
        "ParametrizedComponentsResolver",
        "ComponentMappingDefinition",
        "StreamConfig",
        "StreamParametersDefinition",
        "CheckDynamicStream",
        "DynamicStreamCheckConfig",
    ];
    let dir = corpus_dir();
    let mut with_dynamic_streams = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("manifest.yaml");
        if !path.is_file() {
            continue;
        }
        let manifest =
            sluice_manifest::load_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if manifest.model.dynamic_streams.is_some() {
            with_dynamic_streams += 1;
        }
        let connector = connector(&path);
        let unsupported = unsupported_components(&manifest);
        for component in &unsupported {
            assert!(
                !DYNAMIC.contains(&component.component_type.as_str()),
                "{connector}: {} is refused",
                describe(component)
            );
        }
        let listed: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
        for problem in manifest_problems(&manifest).into_iter().map(|p| p.message) {
            assert!(
                !problem.contains("dynamic_streams") || listed.contains(&problem),
                "{connector}: {problem}"
            );
        }
    }
    // Airtable needs nothing but dynamic streams and config migrations, which both run.
    let airtable = sluice_manifest::load_file(&dir.join("airtable/manifest.yaml")).unwrap();
    assert_eq!(manifest_problems(&airtable), Vec::new());
    assert!(
        with_dynamic_streams >= 4,
        "{with_dynamic_streams} manifests with dynamic_streams"
    );
}

/// Manifests the reference (airbyte-cdk 7.39.1) itself refuses to build, with the error it
/// raises; sluice refuses them with the same message. Checked by running the reference's
/// `streams()` on each with a config made from the spec.
const REFUSED_BY_THE_REFERENCE: &[(&str, &str)] = &[
    // `SessionTokenAuthenticator.expiration_duration: "7200"` is not an ISO 8601 duration.
    ("feishu", "Unable to parse duration string '7200'"),
    // `page_size_option` and `page_token_option` both set the query parameter `offset`.
    (
        "postmarkapp",
        "Request body collision, duplicate keys detected at key path: offset.",
    ),
    // A `RequestOption` with both `field_name` and `field_path`.
    (
        "workable",
        "Only one of field_name or field_path can be provided to RequestOption",
    ),
];

/// `sluice validate` accepts every manifest of the corpus but those that need custom Python
/// code, which it names, and those the reference refuses too, with the reference's message.
#[test]
fn validate_refuses_only_custom_python_and_what_the_reference_refuses() {
    let dir = corpus_dir();
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("manifest.yaml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.sort();
    let mut needing_python = Vec::new();
    for path in &manifests {
        let connector = connector(path);
        let manifest =
            sluice_manifest::load_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let unsupported = unsupported_components(&manifest);
        let not_python: Vec<String> = unsupported
            .iter()
            .filter(|c| !c.is_custom_code())
            .map(describe)
            .collect();
        assert!(
            not_python.is_empty(),
            "{connector}: sluice refuses components that are not custom Python: {not_python:?}"
        );
        let listed: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
        let other_problems: Vec<String> = manifest_problems(&manifest)
            .into_iter()
            .map(|p| p.message)
            .filter(|p| !listed.contains(p))
            .collect();
        match REFUSED_BY_THE_REFERENCE
            .iter()
            .find(|(name, _)| *name == connector)
        {
            Some((_, message)) => assert!(
                other_problems.len() == 1 && other_problems[0].contains(message),
                "{connector}: expected the reference's refusal '{message}', got {other_problems:?}"
            ),
            None => assert!(
                other_problems.is_empty(),
                "{connector}: validate refuses more than custom Python code: {other_problems:?}"
            ),
        }
        if !unsupported.is_empty() {
            needing_python.push(connector);
        }
    }
    eprintln!(
        "{} manifests need custom Python components: {}",
        needing_python.len(),
        needing_python.join(", ")
    );
}
