//! The module graph points one way: each top-level module of `src/` imports (`crate::…`) only
//! modules below it in [`LAYERS`], the order ARCHITECTURE.md describes. A new import that
//! points up (a cycle in the making) fails here with the file that makes it.

use std::collections::BTreeSet;
use std::path::Path;

/// The top-level modules, bottom up.
const LAYERS: &[&str] = &[
    "allocator",
    "error",
    "lexer",
    "semantic",
    "query",
    "plan",
    "sql",
    "db",
    "tz",
    "rollup",
    "engine",
    "saas",
    "load",
    "demo",
    "init",
    "auth",
    "graphql",
    "explorer",
    "dashboard",
    "config",
    "http",
    "cli_query",
    "cli",
];

/// The `crate::<module>` paths in `text`, outside comments and test modules.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(level) = LAYERS.iter().position(|m| *m == top) else {
            problems.push(format!("{}: module {top} is not in LAYERS", rel.display()));
            continue;
        };
        seen.insert(top.clone());
        for dep in imports(&std::fs::read_to_string(f).unwrap()) {
            if dep == top {
                continue;
            }
            match LAYERS.iter().position(|m| *m == dep) {
                Some(d) if d < level => {}
                Some(_) => problems.push(format!(
                    "{}: {top} imports crate::{dep}, which is above it",
                    rel.display()
                )),
                None => {} // crate-level items (e.g. a macro), not a module
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // every layer exists: a renamed module must be renamed here too
    let missing: Vec<_> = LAYERS.iter().filter(|m| !seen.contains(**m)).collect();
    assert!(missing.is_empty(), "no such modules: {missing:?}");
}
