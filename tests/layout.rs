//! Rules of the source's layout from the reviews, checked here so that no one has to by
//! hand: one module emits to socket.io, no `macro_rules!` grows into a code generator, no
//! file grows past 600 lines, lib.rs only wires, the CLI stays out of the HTTP layer,
//! passwords are hashed only through the bounded hasher, and the API's answers are typed.

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

/// The path of a source file from `src/`, with `/` separators.
fn relative(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    path.strip_prefix(&src)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn no_source_file_is_over_600_lines() {
    for (path, text) in sources() {
        let lines = text.lines().count();
        assert!(
            lines <= 600,
            "{}: {lines} lines; split it by concern",
            path.display()
        );
    }
}

#[test]
fn lib_rs_only_wires() {
    let (_, lib) = sources()
        .into_iter()
        .find(|(path, _)| relative(path) == "lib.rs")
        .unwrap();
    assert!(
        lib.lines().count() <= 150,
        "lib.rs keeps the modules, AppState and the routes"
    );
    assert!(
        !lib.contains("async fn"),
        "start-up and handlers live in their own modules"
    );
}

#[test]
fn the_cli_does_not_reach_into_the_http_layer() {
    let (_, cli) = sources()
        .into_iter()
        .find(|(path, _)| relative(path) == "cli.rs")
        .unwrap();
    for http in ["crate::api", "crate::error", "crate::webhooks", "axum"] {
        assert!(
            !cli.contains(http),
            "cli.rs uses {http}; parse through crate::domain"
        );
    }
}

#[test]
fn passwords_are_hashed_only_through_the_hasher() {
    for (path, text) in sources() {
        let file = relative(&path);
        if file == "auth.rs" || file.starts_with("auth/") {
            continue;
        }
        for call in ["hash_password(", "verify_password(", "verify_password_in("] {
            assert!(
                !text.contains(call),
                "{file} calls {call}…) on the async runtime; use auth::PasswordHasher"
            );
        }
    }
}

#[test]
fn the_api_answers_with_typed_bodies() {
    for (path, text) in sources() {
        let file = relative(&path);
        if file.starts_with("api/") || file == "webhooks.rs" || file == "error.rs" {
            assert!(
                !text.contains("json!"),
                "{file} builds a response with json!; derive Serialize on a struct"
            );
        }
    }
}
