//! CONTROL messages: an OAuth refresh-token rotation emits exactly one carrying the new config,
//! before the records read with the new token (case `auth-oauth-rotation`, replayed); a config
//! migration of the spec's `config_normalization_rules` announces the migrated config first and
//! writes it back to the config file (cases `config-migration-*`, replayed).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn a_rotation_emits_exactly_one_control_message_with_the_new_config() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance/auth-oauth-rotation");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("read")
        .args(["--manifest", case.join("manifest.yaml").to_str().unwrap()])
        .args(["--config", case.join("config.json").to_str().unwrap()])
        .args(["--catalog", case.join("catalog.json").to_str().unwrap()])
        .args(["--replay", case.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let messages: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let controls: Vec<&Value> = messages.iter().filter(|m| m["type"] == "CONTROL").collect();
    assert_eq!(controls.len(), 1, "expected one CONTROL message");
    let control = &controls[0]["control"];
    assert_eq!(control["type"], "CONNECTOR_CONFIG");
    let credentials = &control["connectorConfig"]["config"]["credentials"];
    assert_eq!(credentials["refresh_token"], "rotated-refresh");
    assert_eq!(credentials["access_token"], "rotated-access");
    let control_at = messages
        .iter()
        .position(|m| m["type"] == "CONTROL")
        .unwrap();
    let first_record = messages.iter().position(|m| m["type"] == "RECORD").unwrap();
    assert!(
        control_at < first_record,
        "the new config is announced before records read with it"
    );
}

/// Runs sluice on a conformance case with the config at `config` (a scratch copy).
fn run_case(case: &Path, command: &str, config: &Path) -> (bool, Vec<Value>) {
    let mut sluice = Command::new(env!("CARGO_BIN_EXE_sluice"));
    sluice
        .arg(command)
        .args(["--manifest", case.join("manifest.yaml").to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(["--replay", case.to_str().unwrap()]);
    if command == "read" {
        sluice.args(["--catalog", case.join("catalog.json").to_str().unwrap()]);
    }
    let output = sluice.output().unwrap();
    let messages = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output.status.success(), messages)
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

#[test]
fn a_config_migration_is_announced_first_and_written_back_to_the_config_file() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance/config-migration-add-fields");
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("config.json");
    let migrated = serde_json::json!({"window_days": "30",
        "credentials": {"account_id": "acme", "auth_mode": "legacy"}, "window": 30});
    for command in ["check", "discover", "read"] {
        std::fs::copy(case.join("config.json"), &config).unwrap();
        let (success, messages) = run_case(&case, command, &config);
        assert!(success, "{command}: {messages:?}");
        let controls = of_type(&messages, "CONTROL");
        assert_eq!(controls.len(), 1, "{command}: one CONTROL message");
        assert_eq!(
            messages[0]["type"], "CONTROL",
            "{command}: the migrated config is announced before anything else"
        );
        assert_eq!(controls[0]["control"]["type"], "CONNECTOR_CONFIG");
        // The transformations' `derived` is not part of what is announced or stored.
        assert_eq!(
            controls[0]["control"]["connectorConfig"]["config"],
            migrated
        );
        // Written back as Python's json.dump writes it, in the migrated order.
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            r#"{"window_days": "30", "credentials": {"account_id": "acme", "auth_mode": "legacy"}, "window": 30}"#,
            "{command}"
        );
    }

    // Run again on the rewritten file: nothing left to migrate, the same records.
    let (success, messages) = run_case(&case, "read", &config);
    assert!(success);
    assert!(of_type(&messages, "CONTROL").is_empty());
    assert_eq!(of_type(&messages, "RECORD").len(), 2);
}

#[test]
fn a_change_inside_a_top_level_object_is_neither_announced_nor_written_back() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance/config-migration-nested-not-announced");
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("config.json");
    std::fs::copy(case.join("config.json"), &config).unwrap();
    let (success, messages) = run_case(&case, "read", &config);
    assert!(success, "{messages:?}");
    assert!(of_type(&messages, "CONTROL").is_empty());
    // The request matched only with the migrated values.
    assert_eq!(of_type(&messages, "RECORD").len(), 2);
    assert_eq!(
        std::fs::read(&config).unwrap(),
        std::fs::read(case.join("config.json")).unwrap()
    );
}

#[test]
fn a_failing_migration_names_the_rule_and_announces_nothing() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/conformance/config-migration-add-fields");
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("config.json");
    // `credentials` is a string: the first migration cannot add a key inside it.
    let text = r#"{"account_id": "acme", "credentials": "not an object"}"#;
    std::fs::write(&config, text).unwrap();
    let (success, messages) = run_case(&case, "read", &config);
    assert!(!success);
    assert!(of_type(&messages, "CONTROL").is_empty());
    let errors = of_type(&messages, "TRACE");
    assert_eq!(errors.len(), 1, "{messages:?}");
    let error = &errors[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "system_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "ConfigAddFields at spec.config_normalization_rules.config_migrations[0].transformations[0] failed"
        ),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}
