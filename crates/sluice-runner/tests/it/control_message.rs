//! An OAuth refresh-token rotation emits exactly one CONTROL message carrying the new config,
//! before the records read with the new token (case `auth-oauth-rotation`, replayed).

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
