//! `docs/architecture.md` checked against the code, so that it cannot drift from it:
//! - its table of Task verbs lists every method of containerd's ttrpc Task service (read from
//!   the `shim.proto` the `containerd_shim::Task` trait is generated from), one row each;
//! - each function the table names is a `fn` in the file it names (paths under `src/`);
//! - each verb `shim/task.rs` implements is named there as `TaskService::<verb>`, and a verb
//!   it leaves to the trait's default is marked as answering UNIMPLEMENTED;
//! - the document links nowhere outside the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const VERB_TABLE: &str = "## Where each Task verb lives";

/// Where the `containerd-shim-protos` crate keeps containerd's Task service definition.
const SHIM_PROTO: &str = "vendor/github.com/containerd/containerd/api/runtime/task/v2/shim.proto";

fn library() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn architecture_doc() -> String {
    let path = library().join("../../docs/architecture.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn source(file: &str) -> String {
    let path = library().join("src").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The directory of the `containerd-shim-protos` crate this build uses, as cargo resolved it
/// (a registry, a vendor directory or a git checkout alike). Offline, and for Linux only: the
/// crate builds nowhere else, and other platforms' dependencies may never have been fetched.
fn protos_crate() -> PathBuf {
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &platform, "--manifest-path"])
        .arg(library().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let manifest = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "containerd-shim-protos")
        .and_then(|package| package["manifest_path"].as_str())
        .expect("containerd-shim-protos among the dependencies");
    Path::new(manifest).parent().unwrap().to_path_buf()
}

/// `CloseIO` → `close_io`, as ttrpc's code generator names the trait's methods.
fn snake_case(rpc: &str) -> String {
    let mut name = String::new();
    let mut previous_lower = false;
    for c in rpc.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            name.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// The methods of the `containerd_shim::Task` trait: the rpcs of `service Task`.
fn trait_methods() -> BTreeSet<String> {
    let path = protos_crate().join(SHIM_PROTO);
    let proto =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let service = proto
        .split("service Task {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_else(|| panic!("{}: no service Task", path.display()));
    let methods: BTreeSet<String> = service
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .map(|rpc| snake_case(rpc.split('(').next().unwrap().trim()))
        .collect();
    assert!(methods.len() > 10, "{}: rpcs {methods:?}", path.display());
    methods
}

/// The texts between backticks.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// One row of the verb table: its `where` and `does` cells.
struct Row {
    where_: String,
    does: String,
}

/// The verb table, by verb; a verb in two rows fails.
fn verb_table(doc: &str) -> BTreeMap<String, Row> {
    let section = doc
        .split(VERB_TABLE)
        .nth(1)
        .unwrap_or_else(|| panic!("architecture.md has no {VERB_TABLE:?}"));
    let mut rows = BTreeMap::new();
    let table = section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2);
    for line in table {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [verb, where_, does] = cells[..] else {
            panic!("a row of the verb table without 3 cells: {line}");
        };
        let verb = match quoted(verb)[..] {
            [verb] => verb.to_string(),
            _ => panic!("a verb cell is one `method`: {line}"),
        };
        let row = Row {
            where_: where_.to_string(),
            does: does.to_string(),
        };
        assert!(
            rows.insert(verb.clone(), row).is_none(),
            "{verb} in two rows"
        );
    }
    rows
}

/// The blocks `impl … {` … `}` of a file (rustfmt's layout: both at the line's start), as
/// their header line and the names of the `fn`s directly inside.
fn impl_blocks(text: &str) -> Vec<(&str, BTreeSet<&str>)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        // A one-line `impl … {}` has no body to read.
        if !line.starts_with("impl") || line.ends_with('}') {
            continue;
        }
        let fns = lines
            .by_ref()
            .take_while(|line| *line != "}")
            .filter_map(|line| {
                let member = line.strip_prefix("    ").filter(|l| !l.starts_with(' '))?;
                function_name(member)
            })
            .collect();
        blocks.push((line, fns));
    }
    blocks
}

/// The name a line declares a function of, if it does.
fn function_name(line: &str) -> Option<&str> {
    let rest = line.split_once("fn ")?;
    let before = rest.0.trim();
    let modifiers = [
        "",
        "pub",
        "pub(crate)",
        "const",
        "pub const",
        "unsafe",
        "pub unsafe",
        "extern \"C\"",
    ];
    if !modifiers.contains(&before) {
        return None;
    }
    rest.1
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
}

/// Whether `name` is a whole word of `text`.
fn has_word(text: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Whether the file text declares what the table names: `fn name` anywhere, `Type::method`
/// as a `fn` directly inside an `impl` block of `Type`.
fn declares(text: &str, function: &str) -> bool {
    match function.split_once("::") {
        None => text
            .lines()
            .any(|line| function_name(line.trim()) == Some(function)),
        Some((type_, method)) => impl_blocks(text)
            .iter()
            .any(|(header, fns)| has_word(header, type_) && fns.contains(method)),
    }
}

/// The functions a `where` cell names, by file: each `path.rs` is followed by the functions
/// in it, as `Type::method` or `fn name`.
fn named_functions(verb: &str, cell: &str) -> Vec<(String, String)> {
    let mut file = None;
    let mut named = Vec::new();
    for token in quoted(cell) {
        if token.ends_with(".rs") {
            file = Some(token.to_string());
            continue;
        }
        let function = token.strip_prefix("fn ").unwrap_or(token);
        let well_formed = !function.is_empty()
            && function.split("::").all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
            && (token.starts_with("fn ") != function.contains("::"));
        assert!(
            well_formed,
            "{verb}: `{token}` is neither a file, `Type::method` nor `fn name`"
        );
        let file = file
            .clone()
            .unwrap_or_else(|| panic!("{verb}: `{token}` before any file"));
        named.push((file, function.to_string()));
    }
    named
}

#[test]
fn the_verb_table_lists_every_method_of_the_task_trait() {
    let rows = verb_table(&architecture_doc());
    let listed: BTreeSet<String> = rows.keys().cloned().collect();
    let methods = trait_methods();
    let missing: Vec<_> = methods.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&methods).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "architecture.md's verb table: missing {missing:?}, not Task methods {unknown:?}"
    );
}

#[test]
fn every_function_the_verb_table_names_is_in_its_file() {
    let mut wrong = Vec::new();
    for (verb, row) in verb_table(&architecture_doc()) {
        let named = named_functions(&verb, &row.where_);
        assert!(
            !named.is_empty() || row.does.contains("UNIMPLEMENTED"),
            "{verb}: no function"
        );
        for (file, function) in named {
            if !declares(&source(&file), &function) {
                wrong.push(format!("{verb}: `{function}` is not in {file}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_verb_table_says_which_verbs_the_task_service_implements() {
    let task = source("shim/task.rs");
    let implemented: BTreeSet<&str> = impl_blocks(&task)
        .into_iter()
        .find(|(header, _)| header.contains("containerd_shim::Task for TaskService"))
        .expect("shim/task.rs implements containerd_shim::Task")
        .1;
    for (verb, row) in verb_table(&architecture_doc()) {
        let names_it = named_functions(&verb, &row.where_)
            .contains(&("shim/task.rs".to_string(), format!("TaskService::{verb}")));
        if implemented.contains(verb.as_str()) {
            assert!(
                names_it,
                "{verb}: the row names no `TaskService::{verb}` of shim/task.rs"
            );
        } else {
            assert!(
                row.where_.contains("default") && row.does.contains("UNIMPLEMENTED"),
                "{verb} is left to the trait's default: its row must say so (UNIMPLEMENTED)"
            );
        }
    }
}

#[test]
fn the_architecture_links_nowhere_outside_the_repository() {
    let doc = architecture_doc();
    let outside: Vec<&str> = doc
        .lines()
        .filter(|line| line.contains("http://") || line.contains("https://"))
        .collect();
    assert!(
        outside.is_empty(),
        "links outside the repository: {outside:#?}"
    );
}
