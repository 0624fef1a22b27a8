//! Rules of the source's layout from the reviews, checked here so that no one has to by
//! hand: one module emits to socket.io, no `macro_rules!` grows into a code generator, no
//! file grows past 600 lines, lib.rs only wires, the CLI stays out of the HTTP layer,
//! passwords are hashed only through the bounded hasher, the API's answers are typed, and
//! modules import each other in floors, never in circles.

use std::collections::{BTreeMap, BTreeSet};
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

/// The top-level modules of `src/`, lowest floor first, each with the modules it may import
/// (through `crate::`). A module imports only from floors below its own, so no two modules
/// need each other. `lib` stands for the crate root's own items (`crate::AppState`): lib.rs
/// wires every module into the state and the routes, and the modules that serve requests
/// take the state back. That is the one import allowed up the floors, and the low floors
/// (`error`, `config`, `model`, `domain`) do without it.
#[rustfmt::skip]
const FLOORS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("text", &[]),
    ("config", &[]),
    ("sms", &["text"]),
    ("domain", &["sms", "text"]),
    ("error", &["domain"]),
    ("monitoring", &["error", "lib"]),
    ("twilio", &["monitoring", "sms"]),
    ("store", &["config", "domain", "error", "model", "sms", "twilio"]),
    ("events", &["config", "model", "monitoring", "store"]),
    ("auth", &["config", "error", "lib", "model", "store"]),
    ("realtime", &["auth", "config", "error", "events", "lib", "model", "store"]),
    ("webhooks", &["error", "lib", "model", "monitoring", "sms", "store", "text", "twilio"]),
    ("send_queue", &["config", "events", "lib", "model", "store", "twilio", "webhooks"]),
    ("pages", &["auth", "error", "lib"]),
    ("api", &["auth", "domain", "error", "lib", "model", "monitoring", "sms", "store", "text",
              "twilio", "webhooks"]),
    ("housekeeping", &["lib", "monitoring", "realtime"]),
    ("serve", &[]),
    ("startup", &["auth", "config", "events", "housekeeping", "lib", "monitoring", "realtime",
                  "send_queue", "serve", "store", "twilio", "webhooks"]),
    ("banner", &["startup", "webhooks"]),
    ("cli", &["auth", "config", "domain", "model", "startup"]),
];

/// The top-level module a source file belongs to (`store` for `store/reads.rs`).
fn module_of(path: &Path) -> String {
    let file = relative(path);
    let first = file.split('/').next().unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its comment lines: a doc link is not an import.
fn code(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment of everything `text` names after each `prefix` (`crate::`,
/// `super::`), groups (`crate::{a, b::C}`) included.
fn named_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            names.insert(ident(rest));
            continue;
        };
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.insert(ident(&item));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        names.insert(ident(&item));
    }
    names.remove("");
    names
}

/// A circle in `graph`, if there is one, as the names along it.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_import_in_floors() {
    let floors: BTreeMap<&str, &[&str]> = FLOORS.iter().copied().collect();
    for (index, (module, allowed)) in FLOORS.iter().enumerate() {
        for import in *allowed {
            assert!(
                *import == "lib" || FLOORS[..index].iter().any(|(m, _)| m == import),
                "{module} may import {import}, which is not on a floor below it"
            );
        }
    }
    for low in ["error", "config", "model", "domain"] {
        assert!(
            !floors[low].contains(&"lib"),
            "{low} is a floor of its own: it holds no handler"
        );
    }
    let sources = sources();
    let modules: BTreeSet<String> = sources
        .iter()
        .map(|(path, _)| module_of(path))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let listed: BTreeSet<String> = floors.keys().map(|m| m.to_string()).collect();
    assert_eq!(
        modules, listed,
        "every module of src/ has its floor in FLOORS"
    );
    for (path, text) in &sources {
        let module = module_of(path);
        let Some(allowed) = floors.get(module.as_str()) else {
            continue;
        };
        for name in named_after(&code(text), "crate::") {
            let import = if modules.contains(&name) {
                name
            } else {
                "lib".to_owned()
            };
            assert!(
                import == module || allowed.contains(&import.as_str()),
                "{} imports {import}, which is not below {module} (tests/layout.rs, FLOORS)",
                relative(path)
            );
        }
    }
}

/// Inside `store/`: the files import each other without circles (`mod.rs` aside: it holds
/// the `Store` they add their methods to), and a backend is opened by `mod.rs` alone. The
/// rest of the store reaches a backend through its [`Dialect`], which the backend gives.
#[test]
fn store_files_import_without_circles() {
    let store: Vec<(String, String)> = sources()
        .into_iter()
        .filter_map(|(path, text)| {
            let file = relative(&path);
            let stem = file.strip_prefix("store/")?.strip_suffix(".rs")?.to_owned();
            Some((stem, code(&text)))
        })
        .collect();
    let stems: BTreeSet<&str> = store.iter().map(|(stem, _)| stem.as_str()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (stem, code) in &store {
        if stem == "mod" {
            continue;
        }
        let mut names = named_after(code, "super::");
        names.extend(named_after(code, "store::"));
        let siblings: BTreeSet<String> = names
            .into_iter()
            .filter(|n| n != stem && n != "mod" && stems.contains(n.as_str()))
            .collect();
        for backend in ["postgres", "sqlite"] {
            assert!(
                !siblings.contains(backend),
                "store/{stem}.rs names the backend {backend}; go through its Dialect"
            );
        }
        graph.insert(stem.clone(), siblings);
    }
    assert_eq!(circle(&graph), None, "a circle between the files of store/");
}

#[test]
fn circles_are_found() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        graph
    };
    assert_eq!(circle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        circle(&graph(&[("a", "b"), ("b", "c"), ("c", "b")])),
        Some(vec!["b".into(), "c".into(), "b".into()])
    );
    assert_eq!(
        named_after("use crate::{a::{B, C}, d};\nuse crate::e::F;", "crate::"),
        BTreeSet::from(["a".to_owned(), "d".to_owned(), "e".to_owned()])
    );
}
