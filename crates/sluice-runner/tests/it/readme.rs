//! The README's first command is what a new user runs first: it must keep working as written.
//! This test takes the command from the README, runs the same arguments on the binary under
//! test from the workspace root, and checks it reads the bundled example in full.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The arguments after `--` of the README's first `cargo run` command.
fn first_command_arguments() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|line| line.starts_with("cargo run "))
        .expect("the README shows a `cargo run` command");
    let (cargo, arguments) = line
        .split_once(" -- ")
        .expect("the command passes its arguments after `--`");
    assert!(
        cargo.contains("-p sluice-runner"),
        "the first command runs sluice: {line}"
    );
    arguments.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_readmes_first_command_reads_every_stream_of_the_bundled_example() {
    let arguments = first_command_arguments();
    assert_eq!(arguments[0], "read", "the first command is a read");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(&arguments)
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut records: BTreeMap<String, usize> = BTreeMap::new();
    let mut states: BTreeMap<String, Value> = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let message: Value = serde_json::from_str(line).unwrap();
        match message["type"].as_str() {
            Some("RECORD") => {
                let stream = message["record"]["stream"].as_str().unwrap().to_owned();
                *records.entry(stream).or_default() += 1;
            }
            Some("STATE") => {
                let stream = &message["state"]["stream"];
                let name = stream["stream_descriptor"]["name"].as_str().unwrap();
                states.insert(name.to_owned(), stream["stream_state"].clone());
            }
            _ => {}
        }
    }
    // Several streams, pagination (each stream takes more than one page) and an incremental one.
    let expected: BTreeMap<String, usize> = [("customers", 100), ("orders", 90), ("products", 40)]
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count))
        .collect();
    assert_eq!(records, expected);
    assert_eq!(states["orders"]["updated_at"], "2024-03-29T12:06:36Z");
}
