//! `file_uploader`: each record's file lands in the staging directory and its RECORD carries a
//! `file_reference` saying where, as the reference writes it; discover marks the stream
//! file-based. Runs the `file-uploader` conformance case (whose normalised comparison does not
//! look at files) against its cassette.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/conformance/file-uploader")
}

fn run(command: &str, staging: &Path) -> Vec<Value> {
    let dir = case_dir();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.json");
    std::fs::copy(dir.join("config.json"), &config).unwrap();
    let mut sluice = Command::new(env!("CARGO_BIN_EXE_sluice"));
    sluice
        .arg(command)
        .arg("--manifest")
        .arg(dir.join("manifest.yaml"))
        .arg("--config")
        .arg(&config)
        .arg("--replay")
        .arg(dir.join("cassette.json"))
        .env("AIRBYTE_STAGING_DIRECTORY", staging);
    if command == "read" {
        sluice.arg("--catalog").arg(dir.join("catalog.json"));
    }
    let output = sluice.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn files_are_staged_and_referenced_from_their_records() {
    let staging = tempfile::tempdir().unwrap();
    let messages = run("read", staging.path());
    let records: Vec<&Value> = messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| &m["record"])
        .collect();
    assert_eq!(records.len(), 3);
    let expected: [(&str, &[u8]); 3] = [
        ("attachments/1/notes.txt", b"hello from notes\n"),
        ("attachments/2/data.csv", b"a,b\n1,2\n"),
        ("attachments/3/image.bin", &[0, 1, 2, 3, 0xff]),
    ];
    for (record, (relative, content)) in records.iter().zip(expected) {
        let staged = staging.path().join(relative);
        // The reference's field order: the file reference follows `emitted_at`.
        let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["stream", "data", "emitted_at", "file_reference"]);
        let file = &record["file_reference"];
        assert_eq!(file["staging_file_url"], staged.display().to_string());
        assert_eq!(file["source_file_relative_path"], relative);
        assert_eq!(file["file_size_bytes"], content.len());
        assert_eq!(std::fs::read(&staged).unwrap(), content, "{relative}");
    }
    let logs: Vec<&str> = messages
        .iter()
        .filter(|m| m["type"] == "LOG")
        .filter_map(|m| m["log"]["message"].as_str())
        .collect();
    assert!(logs.contains(&"File size: 0.0048828125 KB"), "{logs:?}");
    assert!(logs.contains(&"File relative path: attachments/3/image.bin"));
}

#[test]
fn discover_says_the_stream_is_file_based() {
    let staging = tempfile::tempdir().unwrap();
    let messages = run("discover", staging.path());
    let catalog = messages.iter().find(|m| m["type"] == "CATALOG").unwrap();
    assert_eq!(catalog["catalog"]["streams"][0]["is_file_based"], true);
}
