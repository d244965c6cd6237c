//! `dynamic_streams` that sluice can only partly run: a template with custom Python code makes
//! streams that discover lists and read refuses by name; a resolver with custom Python code makes
//! no stream, and reading one of its streams says why; a made stream that does not build names
//! the template's path.

use crate::support::{full_refresh_catalog, sluice_read, write_manifest_and_config};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Output;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [users]}
definitions:
  requester: {type: HttpRequester, url_base: "URL_BASE", http_method: GET}
  selector:
    type: RecordSelector
    extractor: {type: DpathExtractor, field_path: [data]}
streams:
  - type: DeclarativeStream
    name: users
    retriever:
      type: SimpleRetriever
      requester: {$ref: "#/definitions/requester", path: /users}
      record_selector: {$ref: "#/definitions/selector"}
dynamic_streams:
  - type: DynamicDeclarativeStream
    name: custom_template
    stream_template:
      type: DeclarativeStream
      name: placeholder
      retriever:
        type: SimpleRetriever
        requester: {$ref: "#/definitions/requester", path: /objects}
        record_selector:
          type: RecordSelector
          extractor:
            type: CustomRecordExtractor
            class_name: source_example.components.ObjectsExtractor
    components_resolver:
      type: ParametrizedComponentsResolver
      stream_parameters:
        type: StreamParametersDefinition
        list_of_parameters_for_stream: [{name: contacts}, {name: deals}]
      components_mapping:
        - type: ComponentMappingDefinition
          field_path: [name]
          value: "{{ components_values.name }}"
  - type: DynamicDeclarativeStream
    name: custom_resolver
    stream_template:
      type: DeclarativeStream
      name: placeholder
      retriever:
        type: SimpleRetriever
        requester: {$ref: "#/definitions/requester", path: /tables}
        record_selector: {$ref: "#/definitions/selector"}
    components_resolver:
      type: HttpComponentsResolver
      retriever:
        type: SimpleRetriever
        requester: {$ref: "#/definitions/requester", path: /tables}
        record_selector:
          type: RecordSelector
          extractor:
            type: CustomRecordExtractor
            class_name: source_example.components.TablesExtractor
      components_mapping:
        - type: ComponentMappingDefinition
          field_path: [name]
          value: "{{ components_values.name }}"
"##;

fn messages(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn sluice(command: &'static str, manifest: PathBuf, config: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        run.arg(command).arg("--manifest").arg(&manifest);
        if command != "validate" {
            run.arg("--config").arg(&config);
        }
        run.output().unwrap()
    })
    .await
    .unwrap()
}

fn error_messages(all: &[Value]) -> Vec<(String, String)> {
    all.iter()
        .filter(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .map(|m| {
            (
                m["trace"]["error"]["stream_descriptor"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                m["trace"]["error"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn streams_with_custom_code_are_named_and_the_others_run() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": 1}]})))
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = write_manifest_and_config(work.path(), MANIFEST, &server.uri());

    // validate names both custom components, under dynamic_streams.
    let validate = sluice("validate", manifest.clone(), config.clone()).await;
    let report = String::from_utf8(validate.stderr).unwrap();
    assert!(!validate.status.success(), "{report}");
    let file = manifest.display().to_string();
    for expected in [
        format!(
            "{file}:28:11: error: dynamic_streams[0].stream_template.retriever.record_selector.extractor: CustomRecordExtractor (class source_example.components.ObjectsExtractor)"
        ),
        format!(
            "{file}:56:11: error: dynamic_streams[1].components_resolver.retriever.record_selector.extractor: CustomRecordExtractor (class source_example.components.TablesExtractor)"
        ),
    ] {
        assert!(
            report.contains(&expected),
            "{expected} missing from: {report}"
        );
    }

    // discover lists the streams the template makes, not those of the resolver sluice cannot run.
    let discover = sluice("discover", manifest.clone(), config.clone()).await;
    let stdout = String::from_utf8(discover.stdout).unwrap();
    assert!(discover.status.success(), "{stdout}");
    let catalog = messages(&stdout)
        .into_iter()
        .find(|m| m["type"] == "CATALOG")
        .unwrap_or_else(|| panic!("no catalog: {stdout}"));
    let names: Vec<&str> = catalog["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["users", "contacts", "deals"]);

    // read: users runs; contacts names its custom extractor; a stream the unrunnable resolver
    // might make names the resolver's.
    let catalog = work.path().join("catalog.json");
    std::fs::write(
        &catalog,
        full_refresh_catalog(&["users", "contacts", "tables_a"]),
    )
    .unwrap();
    let read = sluice_read(manifest, config, catalog).await;
    let stdout = String::from_utf8(read.stdout).unwrap();
    assert!(!read.status.success(), "{stdout}");
    let all = messages(&stdout);
    assert_eq!(all.iter().filter(|m| m["type"] == "RECORD").count(), 1);
    let errors = error_messages(&all);
    let of = |stream: &str| {
        errors
            .iter()
            .find(|(name, _)| name == stream)
            .map(|(_, message)| message.clone())
            .unwrap_or_else(|| panic!("no error for {stream}: {stdout}"))
    };
    let contacts = of("contacts");
    assert!(
        contacts.contains("dynamic_streams[0].stream_template.retriever.record_selector.extractor")
            && contacts.contains("ObjectsExtractor")
            && contacts.starts_with(&format!("{file}:28:11: ")),
        "{contacts}"
    );
    let tables = of("tables_a");
    assert!(
        tables
            .contains("dynamic_streams[1].components_resolver.retriever.record_selector.extractor")
            && tables.contains("TablesExtractor"),
        "{tables}"
    );
}

const BAD_VALUE: &str = r##"
version: 6.7.0
type: DeclarativeSource
check: {type: CheckDynamicStream, stream_count: 1}
dynamic_streams:
  - type: DynamicDeclarativeStream
    stream_template:
      type: DeclarativeStream
      name: placeholder
      retriever:
        type: SimpleRetriever
        requester: {type: HttpRequester, url_base: "URL_BASE", path: /x, http_method: GET}
        record_selector:
          type: RecordSelector
          extractor: {type: DpathExtractor, field_path: []}
    components_resolver:
      type: ParametrizedComponentsResolver
      stream_parameters:
        type: StreamParametersDefinition
        list_of_parameters_for_stream: [{name: a, method: FETCH}]
      components_mapping:
        - type: ComponentMappingDefinition
          field_path: [name]
          value: "{{ components_values.name }}"
        - type: ComponentMappingDefinition
          field_path: [retriever, requester, http_method]
          value: "{{ components_values.method }}"
"##;

#[tokio::test]
async fn a_made_stream_that_does_not_build_names_the_template() {
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) =
        write_manifest_and_config(work.path(), BAD_VALUE, "http://127.0.0.1:9");
    let discover = sluice("discover", manifest.clone(), config.clone()).await;
    let stdout = String::from_utf8(discover.stdout).unwrap();
    assert!(!discover.status.success(), "{stdout}");
    let errors = error_messages(&messages(&stdout));
    // The template's `http_method`, where the value the resolver maps in goes.
    let file = manifest.display().to_string();
    assert!(
        errors
            .iter()
            .any(|(_, message)| message.starts_with(&format!(
                "{file}:12:84: dynamic_streams[0].stream_template.retriever.requester.http_method: "
            )) && message.contains("FETCH")),
        "{stdout}"
    );
    // validate finds it without any config or API.
    let validate = sluice("validate", manifest, config).await;
    let report = String::from_utf8(validate.stderr).unwrap();
    assert!(!validate.status.success(), "{report}");
    assert!(
        report.contains(&format!(
            "{file}:12:84: error: dynamic_streams[0].stream_template.retriever.requester.http_method: "
        )),
        "{report}"
    );
}
