//! The library's layout, checked: its code runs in four processes (see `src/lib.rs`), each in
//! a folder of its own, and the module graph has no circle.
//!
//! A module's dependencies are the `crate::…` and `super::…` paths in its code (comments left
//! out), each taken to the longest prefix that is a file of `src/`. The rules:
//! - `init/` (the container's process) uses neither `shim/` nor `helper/`;
//! - `helper/` does not use `shim/`;
//! - the shared modules at the top use none of the process folders;
//! - no module reaches itself again through the modules it uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module files (relative to `src/`, without `.rs`) and the modules each one uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

const PROCESS_FOLDERS: [&str; 3] = ["shim", "helper", "init"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            module_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// `helper/mod.rs` is the module `helper`, `shim/task.rs` the module `shim/task`.
fn module_name(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap().with_extension("");
    let name = relative.to_string_lossy().into_owned();
    name.strip_suffix("/mod").map(str::to_owned).unwrap_or(name)
}

/// The module a path (`crate::shim::task::X`, or `super::x` seen from `from`) lands in.
fn target(from: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = Vec::new();
    let mut words = path.split("::");
    match words.next()? {
        "crate" => {}
        "super" => {
            // `from` is a file module: its parent folder is what `super` names.
            segments.extend(from.split('/').collect::<Vec<_>>().split_last()?.1);
        }
        _ => return None,
    }
    segments.extend(words);
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("/"))
        .find(|candidate| modules.contains(candidate))
}

fn graph() -> Graph {
    let mut files = Vec::new();
    module_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_name(f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let from = module_name(file);
        let text = std::fs::read_to_string(file).unwrap();
        let code = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let uses = graph.entry(from.clone()).or_default();
        for path in paths(&code) {
            if let Some(to) = target(&from, &path, &modules)
                && to != from
                && to != "lib"
            {
                uses.insert(to);
            }
        }
    }
    graph
}

/// Every `crate::a::b` and `super::a` path in `code`, brace groups expanded one level
/// (`crate::shim::{task, exec::Exec}` gives `crate::shim::task` and `crate::shim::exec::Exec`).
fn paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (at, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at..];
        let head: String = rest.chars().take_while(|&c| word(c)).collect();
        let after = &rest[head.len()..];
        if head.ends_with("::") && after.starts_with('{') {
            let group = &after[1..after.find('}').unwrap_or(after.len())];
            for item in group.split(',') {
                let item: String = item.trim().chars().take_while(|&c| word(c)).collect();
                found.push(format!("{head}{item}").trim_end_matches("::").to_owned());
            }
        } else {
            found.push(head.trim_end_matches("::").to_owned());
        }
    }
    found
}

fn folder(module: &str) -> &str {
    module.split('/').next().unwrap()
}

#[test]
fn each_process_has_its_folder() {
    let graph = graph();
    for process in PROCESS_FOLDERS {
        assert!(
            graph.contains_key(process),
            "src/{process}/mod.rs, the {process} process's rules"
        );
    }
    assert!(graph.contains_key("dead_shim"), "src/dead_shim.rs");
}

#[test]
fn processes_use_only_what_runs_in_them() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (from, uses) in &graph {
        let forbidden: &[&str] = match folder(from) {
            "init" => &["shim", "helper"],
            "helper" => &["shim"],
            "shim" | "dead_shim" | "lib" => &[],
            _ => &PROCESS_FOLDERS,
        };
        for to in uses {
            if forbidden.contains(&folder(to)) {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_module_reaches_itself_again() {
    let graph = graph();
    // Depth-first search; a module met again on the current path closes a circle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a Graph,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| *m == module) {
            circles.push(format!("{} -> {module}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "{circles:#?}");
}

#[test]
fn the_checks_see_the_modules_and_their_uses() {
    // The rules above are only as good as the graph: it must see known edges.
    let graph = graph();
    let uses = |from: &str, to: &str| graph.get(from).is_some_and(|u| u.contains(to));
    assert!(uses("shim/task", "shim/container"));
    assert!(uses("helper/create", "helper/prepare"), "super:: paths");
    assert!(uses("helper/prepare", "init/executor"));
    assert!(uses("shim/container", "request"), "brace groups");
    let modules = BTreeSet::from(["a/b".to_string(), "a".to_string()]);
    assert_eq!(target("a/c", "super::b::X", &modules), Some("a/b".into()));
    assert_eq!(paths("use crate::{x::Y, z};"), ["crate::x::Y", "crate::z"]);
}
