//! The layering of the workspace, checked from its sources (docs/architecture.md):
//!
//! - inside each crate, the modules use each other in one direction: the
//!   graph of `use crate::…`, `crate::x::…` and `super::…` references has
//!   no cycle (modules of other crates, re-exported or not, are leaves);
//! - the crates depend on each other downwards only (their Cargo.toml);
//! - the model does no I/O: its sources name no file system, process,
//!   network or database API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, with its module path (`a::b`; the crate
/// root is the empty path).
fn modules(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                out.push((parts.join("::"), path));
            }
        }
    }
    out.sort();
    out
}

/// The source without comments, string and char literals, and `#[cfg(test)]`
/// items (tests may reach anywhere in their crate).
fn code_of(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") || rest.starts_with("br\"") {
            let hashes = rest.trim_start_matches('b')[1..]
                .chars()
                .take_while(|&c| c == '#')
                .count();
            let close = format!("\"{}", "#".repeat(hashes));
            let open = rest.find('"').unwrap() + 1;
            let end = rest[open..]
                .find(&close)
                .map_or(rest.len(), |e| open + e + close.len());
            out.push_str("\"\"");
            i += end;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            out.push_str("\"\"");
            i += (j + 1).min(rest.len());
        } else if rest.starts_with('\'')
            && (rest[1..].starts_with('\\') || rest[1..].chars().nth(1) == Some('\''))
        {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            let end = rest[2..].find('\'').map_or(rest.len(), |e| e + 3);
            i += end;
        } else if rest.starts_with("#[cfg(test)]") {
            // Skip the attribute and the item it guards: up to the end of its
            // first brace block, or its `;`.
            let mut j = "#[cfg(test)]".len();
            let mut depth = 0;
            let rb = rest.as_bytes();
            while j < rb.len() {
                match rb[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        j += 1;
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            i += j;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths a piece of code names from `start` (`crate`, `super`), with
/// `use` groups (`crate::{a::B, c}`) expanded: each as its segments after
/// the start keyword(s), resolved to absolute segments.
fn paths_from(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':');
        if boundary {
            let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
            let base = if rest.starts_with("crate::") {
                i += "crate::".len();
                Some(Vec::new())
            } else if rest.starts_with("super::") {
                let mut base = module.to_vec();
                while chars[i..].iter().collect::<String>().starts_with("super::") {
                    base.pop();
                    i += "super::".len();
                }
                Some(base)
            } else if rest.starts_with("self::") {
                i += "self::".len();
                Some(module.to_vec())
            } else {
                None
            };
            if let Some(base) = base {
                let (tree, used) = read_tree(&chars[i..]);
                for tail in tree {
                    let mut full = base.clone();
                    full.extend(tail);
                    found.push(full);
                }
                i += used.max(1);
                continue;
            }
        }
        i += 1;
    }
    found
}

/// Reads a path tree (`a::b::{c, d::e}`) from the start of `chars`: its
/// leaves' segment lists, and how many chars it took.
fn read_tree(chars: &[char]) -> (Vec<Vec<String>>, usize) {
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut prefix = Vec::new();
    loop {
        skip_ws(&mut i);
        if i < chars.len() && chars[i] == '{' {
            i += 1;
            let mut leaves = Vec::new();
            loop {
                skip_ws(&mut i);
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '}' {
                    i += 1;
                    break;
                }
                if chars[i] == ',' {
                    i += 1;
                    continue;
                }
                let (sub, used) = read_tree(&chars[i..]);
                i += used.max(1);
                // `as name`, kept as a last segment `as name` (no module
                // is named so); anything else up to the separator skipped.
                let start = i;
                while i < chars.len() && chars[i] != ',' && chars[i] != '}' {
                    i += 1;
                }
                let rest: String = chars[start..i].iter().collect();
                let alias = rest
                    .trim()
                    .strip_prefix("as ")
                    .map(|a| format!("as {}", a.trim()));
                for s in sub {
                    let mut full = prefix.clone();
                    full.extend(s);
                    full.extend(alias.clone());
                    leaves.push(full);
                }
            }
            return (leaves, i);
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i == start {
            return (vec![prefix], i);
        }
        prefix.push(chars[start..i].iter().collect());
        if chars[i..].iter().take(2).collect::<String>() == "::" {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// What the crate root re-exports (`pub use a::{b, c as d};`): each name
/// with the path it stands for, or `None` for another crate's item (a leaf).
fn root_reexports(code: &str, names: &BTreeSet<String>) -> BTreeMap<String, Option<Vec<String>>> {
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("pub use ") {
        let start = from + at + "pub use ".len();
        let chars: Vec<char> = code[start..].chars().collect();
        let (tree, used) = read_tree(&chars);
        let after: String = chars[used..].iter().take(64).collect();
        let alias = after.trim_start().strip_prefix("as ").map(|a| {
            a.trim_start()
                .chars()
                .take_while(|&c| is_ident(c))
                .collect::<String>()
        });
        for mut leaf in tree {
            if leaf.first().is_some_and(|s| s == "crate" || s == "self") {
                leaf.remove(0);
            }
            let renamed = leaf
                .last()
                .and_then(|l| l.strip_prefix("as "))
                .map(String::from);
            if renamed.is_some() {
                leaf.pop();
            }
            let Some(last) = leaf.last().cloned() else {
                continue;
            };
            let name = if tree_is_single(&chars, used) {
                alias.clone().unwrap_or(last)
            } else {
                renamed.unwrap_or(last)
            };
            let internal = leaf.first().is_some_and(|first| names.contains(first));
            out.insert(name, internal.then_some(leaf));
        }
        from = start + used;
    }
    out
}

fn tree_is_single(chars: &[char], used: usize) -> bool {
    !chars[..used].contains(&'{')
}

/// `path` (absolute segments) with a root re-export it starts with replaced
/// by what it stands for; `None` when it names another crate's item.
fn resolve(
    mut path: Vec<String>,
    reexports: &BTreeMap<String, Option<Vec<String>>>,
    names: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let Some(first) = path.first() else {
        return Some(path);
    };
    if names.contains(first) {
        return Some(path);
    }
    match reexports.get(first) {
        Some(None) => None,
        Some(Some(target)) => {
            let mut full = target.clone();
            full.extend(path.drain(1..));
            Some(full)
        }
        None => Some(path),
    }
}

/// The module graph of the crate whose sources are in `src`: for each
/// module, the modules of the same crate it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let names: BTreeSet<String> = mods.iter().map(|(m, _)| m.clone()).collect();
    let root = mods.iter().find(|(m, _)| m.is_empty()).map(|(_, p)| p);
    let reexports = root.map_or_else(BTreeMap::new, |root| {
        root_reexports(&code_of(&std::fs::read_to_string(root).unwrap()), &names)
    });
    let mut graph = BTreeMap::new();
    for (module, path) in &mods {
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        let segments: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(String::from).collect()
        };
        let mut edges = BTreeSet::new();
        let mut paths: Vec<Vec<String>> = paths_from(&code, &segments)
            .into_iter()
            .filter_map(|path| resolve(path, &reexports, &names))
            .collect();
        if module.is_empty() {
            // The crate root names its modules without `crate::`.
            for child in names.iter().filter(|m| !m.is_empty() && !m.contains("::")) {
                let needle = format!("{child}::");
                let mut from = 0;
                while let Some(at) = code[from..].find(&needle) {
                    let at = from + at;
                    let before = code[..at].chars().next_back();
                    if !before.is_some_and(|c| is_ident(c) || c == ':') {
                        paths.push(vec![child.clone()]);
                    }
                    from = at + needle.len();
                }
            }
        }
        for path in paths {
            // The longest prefix that is a module of this crate.
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|m| names.contains(m))
                .unwrap_or_default();
            // A module naming its own items, or its own descendants'
            // (`self::sub::X`), is no edge.
            let own = target == *module
                || (!module.is_empty() && target.starts_with(&format!("{module}::")));
            if !own {
                edges.insert(target);
            }
        }
        graph.insert(module.clone(), edges);
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = graph.keys().map(|k| (k.as_str(), Mark::New)).collect();
    fn visit<'g>(
        node: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<&'g str, Mark>,
        stack: &mut Vec<&'g str>,
    ) -> Option<Vec<String>> {
        marks.insert(node, Mark::Open);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::Done) {
                Mark::Open => {
                    let at = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle: Vec<String> =
                        stack[at..].iter().map(|s| s.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let nodes: Vec<&str> = graph.keys().map(String::as_str).collect();
    for node in nodes {
        if marks[node] == Mark::New {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, graph, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn name(module: &str) -> &str {
    if module.is_empty() {
        "(crate root)"
    } else {
        module
    }
}

/// The crates of the workspace whose module graphs must be acyclic.
const LAYERED: &[&str] = &[
    "airlock-model",
    "airlock-store",
    "airlock-core",
    "airlock-servers",
    "airlock-mcp",
];

#[test]
fn module_graphs_have_no_cycle() {
    for krate in LAYERED {
        let src = workspace().join("crates").join(krate).join("src");
        let graph = graph(&src);
        if let Some(cycle) = cycle(&graph) {
            let path: Vec<&str> = cycle.iter().map(|m| name(m)).collect();
            panic!(
                "{krate}: its modules use each other in a cycle: {}\n\
                 a module may use only modules below it; move what both need into a module below both",
                path.join(" -> ")
            );
        }
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod inner;\nuse crate::b::X;\n").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "// crate::a is only named here\npub struct X;\n",
    )
    .unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::super::b;\n").unwrap();
    assert_eq!(cycle(&graph(src)), None);
    std::fs::write(src.join("b.rs"), "pub fn f() { crate::a::inner::g() }\n").unwrap();
    let found = cycle(&graph(src)).expect("a::inner -> b -> a::inner");
    let along: BTreeSet<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(along, BTreeSet::from(["a::inner", "b"]), "{found:?}");
    std::fs::write(src.join("b.rs"), "use crate::{c, a::{Y, inner::Z}};\n").unwrap();
    assert!(cycle(&graph(src)).is_some());
    // Through a re-export at the root, to the module that defines it.
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a;\npub mod b;\npub use a::inner::Z;\npub use other::m;\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "fn f(_: crate::Z) { crate::m::g() }\n").unwrap();
    assert!(cycle(&graph(src)).is_some());
    // Another crate's module re-exported at the root is a leaf, under
    // its own name or another.
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a;\npub mod b;\npub use other::{m, n as o};\npub use p as q;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "fn f() { crate::m::g(); crate::o::g(); crate::q::g() }\n",
    )
    .unwrap();
    assert_eq!(cycle(&graph(src)), None);
}

/// The airlock crates a crate's Cargo.toml depends on (not dev-dependencies).
fn airlock_deps(krate: &str) -> BTreeSet<String> {
    let manifest =
        std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut deps = BTreeSet::new();
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[dependencies]"
            && let Some(dep) = line.split(['.', ' ', '=']).next()
            && dep.starts_with("airlock-")
        {
            deps.insert(dep.to_string());
        }
    }
    deps
}

#[test]
fn crates_depend_downwards() {
    let allowed: &[(&str, &[&str])] = &[
        // Snapshot names and filters are part of a workflow's syntax.
        ("airlock-model", &["airlock-snap"]),
        // The head record is signed with the repository's key.
        (
            "airlock-store",
            &[
                "airlock-model",
                "airlock-ledger",
                "airlock-proof",
                "airlock-fs",
            ],
        ),
        ("airlock-effects", &["airlock-model"]),
        // rmcp and tokio stay here, out of the engine: the CLI hands the
        // proxy the engine's staging and gives the engine `WithMcp`.
        ("airlock-mcp-proxy", &["airlock-model", "airlock-fs"]),
        (
            "airlock-core",
            &[
                "airlock-model",
                "airlock-store",
                "airlock-fs",
                "airlock-ledger",
                "airlock-proof",
                "airlock-sandbox",
                // The engine starts a command's egress proxy (a leaf).
                "airlock-egress",
                "airlock-scan",
                "airlock-secrets",
                "airlock-snap",
                // The sealed log's tree and checkpoints (a leaf, issue 20).
                "airlock-log",
            ],
        ),
        // The MCP server: rmcp and tokio stay out of the engine.
        ("airlock-mcp", &["airlock-core"]),
        (
            "airlock-servers",
            &[
                "airlock-model",
                "airlock-store",
                "airlock-core",
                "airlock-ledger",
                "airlock-sandbox",
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (krate, may) in allowed {
        for dep in airlock_deps(krate) {
            if !may.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layering (docs/architecture.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_model_does_no_io() {
    let src = workspace().join("crates/airlock-model/src");
    let forbidden = [
        "std::fs",
        "std::process",
        "std::net",
        "std::os",
        "rusqlite",
        "File::",
        "Command::",
        "TcpStream",
        "UnixStream",
    ];
    let mut found = Vec::new();
    for (module, path) in modules(&src) {
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        for word in forbidden {
            if code.contains(word) {
                found.push(format!("{} names {word}", name(&module)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the model is pure data and parsing; I/O belongs in the engine:\n{}",
        found.join("\n")
    );
}

/// `cargo test -p airlock-core --test layering -- --ignored --nocapture`
/// prints each crate's module graph.
#[test]
#[ignore]
fn print_module_graphs() {
    for krate in LAYERED {
        let src = workspace().join("crates").join(krate).join("src");
        if !src.exists() {
            continue;
        }
        println!("== {krate}");
        for (module, edges) in graph(&src) {
            let edges: Vec<&str> = edges.iter().map(|m| name(m)).collect();
            println!("{}: {}", name(&module), edges.join(" "));
        }
    }
}
