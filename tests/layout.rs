//! Rules of the source's layout from the first review, checked here so that no one has to
//! by hand: one module emits to socket.io, and no `macro_rules!` grows into a code generator.

use std::path::{Path, PathBuf};

/// Every Rust file under `src/`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 10, "found the sources");
    out
}

#[test]
fn only_the_events_module_emits() {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/events.rs");
    for (path, text) in sources() {
        if path != events {
            assert!(
                !text.contains(".emit("),
                "{} emits; publish through events::Events instead",
                path.display()
            );
        }
    }
}

#[test]
fn no_macro_body_is_over_60_lines() {
    for (path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("macro_rules!") {
                continue;
            }
            let mut depth = 0i32;
            let end = (start..lines.len())
                .find(|&i| {
                    depth += lines[i].matches('{').count() as i32;
                    depth -= lines[i].matches('}').count() as i32;
                    depth == 0 && lines[i].contains('}')
                })
                .expect("the macro ends");
            let length = end - start + 1;
            assert!(
                length <= 60,
                "{}:{}: a macro of {length} lines; write the code as functions",
                path.display(),
                start + 1
            );
        }
    }
}
