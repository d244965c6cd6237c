//! Reference resolution: `$ref`, bare `#/` strings, 0.1.0-era `*ref(...)`, and its errors.

use serde_json::{Value, json};
use sluice_manifest::{ManifestErrorKind, resolve::resolve_references};

fn resolve_yaml(yaml: &str) -> Result<Value, sluice_manifest::ManifestError> {
    resolve_references(sluice_manifest::yaml::parse(yaml).unwrap())
}

/// `line:column` of the error in `yaml`.
fn location(yaml: &str, error: &sluice_manifest::ManifestError) -> String {
    let source = sluice_manifest::ManifestSource::new("m.yaml", yaml);
    source
        .locate_error(error)
        .map(|l| l.to_string())
        .unwrap_or_default()
}

#[test]
fn ref_merges_with_sibling_keys_and_siblings_win() {
    let tree = resolve_yaml(
        "definitions:\n  r: {a: 1, b: 2}\nx:\n  c: 3\n  $ref: \"#/definitions/r\"\n  b: 20\n",
    )
    .unwrap();
    assert_eq!(tree["x"], json!({"a": 1, "b": 20, "c": 3}));
    // Referenced keys first, in their order, then the mapping's own new keys.
    let keys: Vec<_> = tree["x"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["a", "b", "c"]);
}

#[test]
fn ref_to_a_non_mapping_replaces_the_mapping() {
    let tree = resolve_yaml("v: [1, 2]\nx: {$ref: \"#/v\", ignored: true}\n").unwrap();
    assert_eq!(tree["x"], json!([1, 2]));
}

#[test]
fn bare_strings_and_nested_pointers_are_replaced() {
    let tree = resolve_yaml(
        "definitions:\n  a:\n    b:\n      c: deep\n    list: [zero, one]\nx: \"#/definitions/a/b/c\"\ny: \"#/definitions/a/list/1\"\nz: [\"#/definitions/a/b\"]\n",
    )
    .unwrap();
    assert_eq!(tree["x"], "deep");
    assert_eq!(tree["y"], "one");
    assert_eq!(tree["z"], json!([{"c": "deep"}]));
}

#[test]
fn references_inside_referenced_nodes_are_resolved() {
    let tree = resolve_yaml(
        "definitions:\n  base: {url: \"#/definitions/url\"}\n  url: https://x\n  child: {$ref: \"#/definitions/base\", path: /p}\nstream: \"#/definitions/child\"\n",
    )
    .unwrap();
    assert_eq!(tree["stream"], json!({"url": "https://x", "path": "/p"}));
}

#[test]
fn targets_are_read_from_the_manifest_as_written() {
    // `b` overrides a key of `a` through $ref; `#/definitions/a` still reads `a` itself.
    let tree = resolve_yaml(
        "definitions:\n  a: {k: 1}\n  b: {$ref: \"#/definitions/a\", k: 2}\nx: \"#/definitions/a\"\ny: \"#/definitions/b\"\n",
    )
    .unwrap();
    assert_eq!(tree["x"], json!({"k": 1}));
    assert_eq!(tree["y"], json!({"k": 2}));
}

#[test]
fn keys_containing_a_slash_are_reachable() {
    let tree = resolve_yaml(
        "nested: {path: first}\n\"nested/path\": second\n\"a/b\": {c: 1}\nx: \"#/nested/path\"\ny: \"#/a~1b/c\"\n",
    )
    .unwrap();
    assert_eq!(tree["x"], "second");
    assert_eq!(tree["y"], 1);
}

#[test]
fn old_star_ref_works_as_bare_string_and_as_ref_value() {
    let tree = resolve_yaml(
        "definitions:\n  selector: {extractor: {field_pointer: [data]}}\n  requester: {url_base: https://x}\nretriever:\n  record_selector:\n    $ref: \"*ref(definitions.selector)\"\n  requester: \"*ref(definitions.requester)\"\nbase: \"*ref(definitions.requester.url_base)\"\n",
    )
    .unwrap();
    assert_eq!(
        tree["retriever"]["record_selector"],
        json!({"extractor": {"field_pointer": ["data"]}})
    );
    assert_eq!(
        tree["retriever"]["requester"],
        json!({"url_base": "https://x"})
    );
    assert_eq!(tree["base"], "https://x");
}

#[test]
fn config_overrides_are_not_references() {
    let tree = resolve_yaml("config_overrides: {key: \"#/nothing\"}\n").unwrap();
    assert_eq!(tree["config_overrides"]["key"], "#/nothing");
}

#[test]
fn dangling_reference_names_where_and_what() {
    let yaml = "definitions: {a: 1}\nstreams:\n  - retriever: {$ref: \"#/definitions/missing\"}\n";
    let err = resolve_yaml(yaml).unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::DanglingReference);
    assert_eq!(err.path.to_string(), "streams[0].retriever.$ref");
    assert_eq!(location(yaml, &err), "3:17");
    assert!(
        err.message.contains("#/definitions/missing"),
        "{}",
        err.message
    );

    let yaml = "v: 1\nx: \"*ref(definitions.nope)\"\n";
    let err = resolve_yaml(yaml).unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::DanglingReference);
    assert_eq!(err.path.to_string(), "x");
    assert_eq!(location(yaml, &err), "2:1");
    assert!(
        err.message.contains("*ref(definitions.nope)"),
        "{}",
        err.message
    );
}

#[test]
fn cycles_are_errors_not_hangs() {
    let yaml = "a: {$ref: \"#/b\"}\nb: {$ref: \"#/a\"}\n";
    let err = resolve_yaml(yaml).unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::ReferenceCycle);
    assert_eq!(location(yaml, &err), "1:5");
    assert!(
        err.message.contains("#/a") && err.message.contains("#/b"),
        "{}",
        err.message
    );

    let yaml = "v: 0\na: {child: \"#/a\"}\n";
    let err = resolve_yaml(yaml).unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::ReferenceCycle);
    assert_eq!(err.path.to_string(), "a.child");
    assert_eq!(location(yaml, &err), "2:5");

    let err = resolve_yaml("x: \"#/\"\n").unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::ReferenceCycle);
}

#[test]
fn long_reference_chains_are_refused_without_overflowing_the_stack() {
    let mut yaml = String::from("definitions:\n");
    for i in 0..5000 {
        yaml.push_str(&format!("  d{i}: \"#/definitions/d{}\"\n", i + 1));
    }
    yaml.push_str("  d5000: end\nx: \"#/definitions/d0\"\n");
    let err = resolve_yaml(&yaml).unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::InvalidValue);
    assert!(err.message.contains("deeper"), "{}", err.message);
}

#[test]
fn references_that_multiply_are_bounded() {
    // Each level holds the previous one ten times: 10^9 nodes if expanded.
    let mut yaml = String::from("l0: [x]\n");
    for i in 1..10 {
        let prev = format!("\"#/l{}\"", i - 1);
        yaml.push_str(&format!("l{i}: [{}]\n", [prev.as_str(); 10].join(", ")));
    }
    let err = resolve_yaml(&yaml).unwrap_err();
    assert!(err.message.contains("nodes"), "{}", err.message);
}

#[test]
fn deep_plain_nesting_from_json_is_refused() {
    let mut tree = json!("leaf");
    for _ in 0..1000 {
        tree = json!({ "k": tree });
    }
    let err = resolve_references(tree).unwrap_err();
    assert_eq!(err.kind, ManifestErrorKind::InvalidValue);
}
