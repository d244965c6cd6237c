//! `sluice validate`: resolves and checks a manifest without a config, and reports what keeps
//! sluice from running it (errors) and what the reference silently gets wrong (warnings), each
//! with the file, line and column, as a compiler does.

use crate::cli::ReportFormat;
use crate::text::count;
use serde_json::{Value, json};
use sluice_manifest::{Location, Manifest, ManifestPath, ManifestSource};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One error or warning, located in the manifest text.
#[derive(Debug)]
struct Diagnostic {
    severity: Severity,
    /// The component it is about; `None` for the manifest as a whole.
    path: Option<ManifestPath>,
    location: Option<Location>,
    /// The stream (or dynamic stream definition) the component belongs to.
    stream: Option<String>,
    /// What is wrong, without the path (printed before it).
    message: String,
    suggestion: Option<String>,
}

/// Validates the manifest file at `path` and prints the report; exits 0 only when sluice can
/// run the manifest (warnings never change that).
pub fn validate(path: &Path, format: ReportFormat) -> ExitCode {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let diagnostic = Diagnostic {
                severity: Severity::Error,
                path: None,
                location: None,
                stream: None,
                message: format!("cannot read the manifest: {e}"),
                suggestion: None,
            };
            return report(&name, &[diagnostic], format);
        }
    };
    let source = ManifestSource::new(name.clone(), text);
    let diagnostics = match sluice_manifest::load_str(source.text()) {
        Ok(manifest) => diagnose(&manifest, &source),
        Err(error) => {
            let path = (!error.path.is_root()).then(|| error.path.clone());
            // Nothing is resolved: the stream's name is read from the manifest as written.
            let stream = path.as_ref().and_then(|p| {
                let written = sluice_manifest::yaml::parse(source.text()).ok()?;
                stream_name(&written, p)
            });
            vec![Diagnostic {
                severity: Severity::Error,
                location: source.locate_error(&error),
                path,
                stream,
                message: error.message,
                suggestion: error.suggestion,
            }]
        }
    };
    report(&name, &diagnostics, format)
}

/// Everything `validate` finds in a loaded manifest, grouped by stream: the manifest-wide ones
/// first, then each stream's in manifest order, errors before warnings, then by line.
fn diagnose(manifest: &Manifest, source: &ManifestSource) -> Vec<Diagnostic> {
    let mut found: Vec<(Severity, Option<ManifestPath>, String)> = Vec::new();
    for problem in sluice_engine::manifest_problems(manifest) {
        found.push((Severity::Error, problem.path, problem.message));
    }
    // Settings the reference accepts silently but that hurt; they never fail validation.
    for warning in sluice_slice::lint::lint(manifest) {
        found.push((Severity::Warning, Some(warning.path), warning.message));
    }
    for (path, message) in sluice_manifest::ignored_components(&manifest.resolved) {
        found.push((Severity::Warning, Some(path), message));
    }
    for (path, message) in sluice_engine::ConfigRules::warnings(manifest.model.spec.as_ref()) {
        found.push((Severity::Warning, Some(path), message));
    }
    for component in sluice_manifest::components(&manifest.resolved) {
        if component.component_type == "ResponseToFileExtractor" {
            found.push((
                Severity::Warning,
                Some(component.path),
                "the reference's ResponseToFileExtractor fails on every download that has a \
                 Content-Type header (it reads the header with requests.utils.parse_header_links); \
                 sluice reads such downloads"
                    .to_owned(),
            ));
        }
    }
    let mut diagnostics: Vec<Diagnostic> = found
        .into_iter()
        .map(|(severity, path, message)| Diagnostic {
            severity,
            location: path.as_ref().and_then(|p| source.locate(p)),
            stream: path
                .as_ref()
                .and_then(|p| stream_name(&manifest.resolved, p)),
            message: match &path {
                Some(path) => without_path(&message, path),
                None => message,
            },
            path,
            suggestion: None,
        })
        .collect();
    diagnostics.sort_by_key(|d| {
        (
            group(d.path.as_ref()),
            d.severity,
            d.location.map(|l| (l.line, l.column)),
        )
    });
    diagnostics
}

/// The group a path is reported in: the manifest as a whole, a stream, or a dynamic stream
/// definition, in manifest order.
fn group(path: Option<&ManifestPath>) -> (u8, usize) {
    match path.and_then(ManifestPath::top_entry) {
        Some(("streams", i)) => (1, i),
        Some(("dynamic_streams", i)) => (2, i),
        _ => (0, 0),
    }
}

/// The name of the stream (or dynamic stream definition) `path` lies in, a stream of a
/// `ConditionalStreams` entry included.
fn stream_name(resolved: &Value, path: &ManifestPath) -> Option<String> {
    if group(Some(path)).0 == 0 {
        return None;
    }
    let entry = path.prefix(2);
    let nested = path.prefix(4);
    let node = if nested.parent() == entry.key("streams") {
        resolved.pointer(&nested.json_pointer())
    } else {
        resolved.pointer(&entry.json_pointer())
    }?;
    node.get("name").and_then(Value::as_str).map(str::to_owned)
}

/// The message without the path it repeats, since the report prints the path before it:
/// `manifest at <path>: ...`, `<path>: ...`, or `X at <path> in ...`.
fn without_path(message: &str, path: &ManifestPath) -> String {
    let path = path.to_string();
    for prefix in [format!("manifest at {path}: "), format!("{path}: ")] {
        if let Some(rest) = message.strip_prefix(&prefix) {
            return rest.to_owned();
        }
    }
    message.replacen(&format!(" at {path}"), "", 1)
}

fn report(name: &str, diagnostics: &[Diagnostic], format: ReportFormat) -> ExitCode {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    match format {
        ReportFormat::Text => {
            for diagnostic in diagnostics {
                eprintln!("{}", line(name, diagnostic));
            }
            let counts = counts(errors, warnings);
            if errors == 0 {
                println!("{name}: ok, sluice can run this manifest{counts}");
            } else {
                eprintln!("{name}: sluice cannot run this manifest{counts}");
            }
        }
        ReportFormat::Json => {
            let listed: Vec<Value> = diagnostics.iter().map(|d| as_json(name, d)).collect();
            let document = json!({
                "manifest": name,
                "runnable": errors == 0,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": listed,
            });
            println!("{document}");
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `manifest.yaml:42:7: error: streams[2].retriever.paginator: <message> (<suggestion>)`.
fn line(name: &str, d: &Diagnostic) -> String {
    let mut text = name.to_owned();
    if let Some(location) = d.location {
        text.push_str(&format!(":{location}"));
    }
    text.push_str(&format!(": {}: ", d.severity.as_str()));
    if let Some(path) = &d.path {
        text.push_str(&format!("{path}: "));
    }
    text.push_str(&d.message);
    if let Some(suggestion) = &d.suggestion {
        text.push_str(&format!(" ({suggestion})"));
    }
    text
}

fn as_json(name: &str, d: &Diagnostic) -> Value {
    json!({
        "severity": d.severity.as_str(),
        "file": name,
        "line": d.location.map(|l| l.line),
        "column": d.location.map(|l| l.column),
        "path": d.path.as_ref().map(ToString::to_string),
        "stream": d.stream,
        "message": d.message,
        "suggestion": d.suggestion,
    })
}

/// `: 2 errors, 1 warning` (nothing when there is neither).
fn counts(errors: usize, warnings: usize) -> String {
    match (errors, warnings) {
        (0, 0) => String::new(),
        (0, w) => format!(" ({})", count(w, "warning")),
        (e, 0) => format!(": {}", count(e, "error")),
        (e, w) => format!(": {}, {}", count(e, "error"), count(w, "warning")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_the_path_they_repeat() {
        let path = ManifestPath::parse("streams[0].retriever");
        assert_eq!(
            without_path("manifest at streams[0].retriever: bad", &path),
            "bad"
        );
        assert_eq!(without_path("streams[0].retriever: bad", &path), "bad");
        assert_eq!(
            without_path("X at streams[0].retriever in stream 'a': no", &path),
            "X in stream 'a': no"
        );
        assert_eq!(without_path("other: bad", &path), "other: bad");
    }

    #[test]
    fn groups_and_streams_follow_the_manifest() {
        let resolved = json!({"streams": [
            {"name": "a"},
            {"type": "ConditionalStreams", "streams": [{"name": "b"}, {"name": "c"}]},
        ], "dynamic_streams": [{"name": "d"}]});
        let name = |p: &str| stream_name(&resolved, &ManifestPath::parse(p));
        assert_eq!(name("streams[0].retriever"), Some("a".to_owned()));
        assert_eq!(
            name("streams[1].streams[1].retriever"),
            Some("c".to_owned())
        );
        assert_eq!(
            name("dynamic_streams[0].stream_template"),
            Some("d".to_owned())
        );
        assert_eq!(name("spec"), None);
        let group_of = |p: &str| group(Some(&ManifestPath::parse(p)));
        assert_eq!(group_of("spec.x"), (0, 0));
        assert_eq!(group_of("streams[3].x"), (1, 3));
        assert_eq!(group_of("dynamic_streams[2]"), (2, 2));
        assert_eq!(counts(1, 2), ": 1 error, 2 warnings");
        assert_eq!(counts(0, 1), " (1 warning)");
    }
}
