//! Runs the page's unit tests (every `static/js/*.test.mjs`, with `node --test`), then the
//! browser tests (`tests/browser/run.mjs`: Playwright driving Chromium through the Node original's
//! Success Checklist) against the binary this `cargo test` built.

use std::path::Path;
use std::process::Command;

#[test]
fn success_checklist_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = root.join("tests/browser");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if Command::new("node").arg("--version").output().is_err() {
        assert!(!ci, "Node.js is needed for the browser tests");
        eprintln!("skipped: Node.js not found, so the browser tests did not run");
        return;
    }
    let mut units: Vec<_> = std::fs::read_dir(root.join("static/js"))
        .expect("static/js is readable")
        .map(|entry| entry.expect("static/js is readable").path())
        .filter(|p| p.to_str().is_some_and(|p| p.ends_with(".test.mjs")))
        .collect();
    units.sort();
    assert!(!units.is_empty(), "no static/js/*.test.mjs found");
    let status = Command::new("node")
        .arg("--test")
        .args(&units)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the page's unit tests failed (node --test static/js/*.test.mjs; see the output above)"
    );
    if !suite.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&suite)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
    let output_dir = std::env::var("TEST_OUTPUT")
        .unwrap_or_else(|_| root.join("test-output/browser").display().to_string());
    let status = Command::new("node")
        .arg(suite.join("run.mjs"))
        .env("SMSDESK_BIN", env!("CARGO_BIN_EXE_smsdesk"))
        .env("TEST_OUTPUT", output_dir)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "browser tests failed (see the output above and test-output/browser/)"
    );
}
