//! Guards the module structure of berth's crates (the runtime and the
//! shim): `unsafe` only in each crate's syscall layer, `src/sys/`; and no
//! import cycle between modules, except through `error.rs`, whose `From`
//! conversions name every module's error type.
//!
//! The graph is read from the sources: every `crate::`, `super::` and
//! `self::` path (in `use` trees and in expressions) is an edge from the
//! file it is in to the longest module the path names. Cycles are looked
//! for level by level: among the top-level modules of the crate (a
//! directory module counts as one node), then among the children of each
//! directory module. A child that uses its own parent (`super::Error`) is
//! not a cycle at any level: the parent is the facade that declares it.
//! Test-only code (`#[cfg(test)]` modules and files) is left out.
//!
//! `BERTH_MODGRAPH=<crate src dir>` prints that tree's levels and their
//! strongly connected components instead of checking berth's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;
/// Nodes of one level and whom each names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules of a crate, by path, with their source (comments, strings
/// and test-only modules removed).
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap().with_extension("");
        let mut m: Module = rel.iter().map(|c| c.to_string_lossy().into()).collect();
        if m.last().is_some_and(|l| l == "mod") || m == ["lib"] || m == ["main"] {
            m.pop();
        }
        let text = strip(&std::fs::read_to_string(&f).unwrap());
        out.entry(m).or_insert_with(String::new).push_str(&text);
    }
    // Files declared under #[cfg(test)] in their parent.
    let mut test_only = BTreeSet::new();
    for (m, text) in &out {
        for name in cfg_test_mods(text) {
            let mut child = m.clone();
            child.push(name);
            test_only.insert(child);
        }
    }
    out.retain(|m, _| !test_only.iter().any(|t| m.starts_with(t)));
    for text in out.values_mut() {
        *text = drop_cfg_test_blocks(text);
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Source without comments, string and char literals.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            i += body.find("*/").map_or(rest.len(), |j| j + 4);
        } else if let Some(n) = raw_string_len(rest, i > 0 && is_ident(b[i - 1])) {
            out.push_str("\"\"");
            i += n;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if let Some(n) = char_literal_len(rest) {
            out.push_str("' '");
            i += n;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn raw_string_len(s: &str, after_ident: bool) -> Option<usize> {
    let t = s.strip_prefix('b').unwrap_or(s);
    let t = t.strip_prefix('r')?;
    if after_ident {
        return None;
    }
    let hashes = t.len() - t.trim_start_matches('#').len();
    let body = t[hashes..].strip_prefix('"')?;
    let end = format!("\"{}", "#".repeat(hashes));
    let close = body.find(&end)?;
    Some(s.len() - body.len() + close + end.len())
}

/// `'x'` or `'\n'`, not a lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let t = s.strip_prefix('\'')?;
    let mut chars = t.char_indices();
    let (_, c) = chars.next()?;
    let after = if c == '\\' {
        t.get(2..)?.find('\'')? + 2
    } else {
        chars.next().filter(|(_, c)| *c == '\'')?.0
    };
    Some(1 + after + 1)
}

/// Names of `#[cfg(test)] mod name;` declarations.
fn cfg_test_mods(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        rest = &rest[i + 12..];
        let t = skip_attrs(rest);
        if let Some(m) = t.strip_prefix("mod ") {
            let name: String = m
                .trim_start()
                .chars()
                .take_while(|c| is_ident(*c as u8))
                .collect();
            if m.trim_start()[name.len()..].trim_start().starts_with(';') {
                out.push(name);
            }
        }
    }
    out
}

fn skip_attrs(mut t: &str) -> &str {
    loop {
        t = t.trim_start();
        if t.starts_with("#[") {
            t = &t[t.find(']').map_or(t.len(), |j| j + 1)..];
        } else if let Some(v) = t.strip_prefix("pub") {
            t = v.trim_start();
            if t.starts_with('(') {
                t = &t[t.find(')').map_or(t.len(), |j| j + 1)..];
            }
        } else {
            return t;
        }
    }
}

/// The text without `#[cfg(test)] mod name { ... }` blocks.
fn drop_cfg_test_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        let t = skip_attrs(&rest[i + 12..]);
        let block = t
            .strip_prefix("mod ")
            .and_then(|m| m.find(['{', ';']).filter(|j| m.as_bytes()[*j] == b'{'))
            .map(|j| &t[4 + j + 1..]);
        let Some(body) = block else {
            out.push_str(&rest[i..i + 12]);
            rest = &rest[i + 12..];
            continue;
        };
        let mut depth = 1;
        let mut end = body.len();
        for (k, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = k + 1;
                break;
            }
        }
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// Every path a module names through `crate::`, `super::` or `self::`,
/// made absolute; use trees (`crate::a::{b, c::d}`) are expanded.
fn paths(me: &Module, text: &str) -> Vec<Module> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    for kw in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(kw).map(|i| i + from) {
            from = i + kw.len();
            if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':') {
                continue;
            }
            let mut trees = Vec::new();
            use_tree(text, &mut { from }, Vec::new(), &mut trees);
            for t in trees {
                let mut full = match kw {
                    "crate::" => Vec::new(),
                    "super::" => me[..me.len().saturating_sub(1)].to_vec(),
                    _ => me.clone(),
                };
                for seg in t {
                    if seg == "super" {
                        full.pop();
                    } else {
                        full.push(seg);
                    }
                }
                out.push(full);
            }
        }
    }
    out
}

fn use_tree(s: &str, i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        let t = &s[*i..];
        let ws = t.len() - t.trim_start().len();
        let t = t.trim_start();
        if t.starts_with('{') {
            *i += ws + 1;
            loop {
                use_tree(s, i, path.clone(), out);
                let t = s[*i..].trim_start();
                *i = s.len() - t.len();
                if let Some(r) = t.strip_prefix(',') {
                    *i = s.len() - r.len();
                }
                let t = s[*i..].trim_start();
                *i = s.len() - t.len();
                if let Some(r) = t.strip_prefix('}') {
                    *i = s.len() - r.len();
                    return;
                }
                if t.is_empty() {
                    return;
                }
            }
        }
        let ident: String = t
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            out.push(path);
            return;
        }
        *i += ws + ident.len();
        path.push(ident);
        match s[*i..].strip_prefix("::") {
            Some(_) => *i += 2,
            None => {
                out.push(path);
                return;
            }
        }
    }
}

/// The module a path names: its longest prefix that is a module.
fn resolve<'a>(mods: &'a BTreeMap<Module, String>, path: &[String]) -> Option<&'a Module> {
    (1..=path.len())
        .rev()
        .find_map(|k| mods.get_key_value(&path[..k]).map(|(m, _)| m))
}

/// Module-to-module edges of a crate.
fn edges(mods: &BTreeMap<Module, String>) -> BTreeSet<(Module, Module)> {
    let mut out = BTreeSet::new();
    for (me, text) in mods {
        for p in paths(me, text) {
            if let Some(to) = resolve(mods, &p) {
                if to != me {
                    out.insert((me.clone(), to.clone()));
                }
            }
        }
    }
    out
}

/// The graph among the children of `parent`: an edge between two children
/// when anything in one's subtree names anything in the other's.
fn level(
    parent: &Module,
    edges: &BTreeSet<(Module, Module)>,
) -> BTreeMap<String, BTreeSet<String>> {
    let child = |m: &Module| {
        (m.len() > parent.len() && m.starts_with(parent)).then(|| m[parent.len()].clone())
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in edges {
        if let (Some(x), Some(y)) = (child(a), child(b)) {
            // error.rs may name every module: its From conversions.
            if x != y && !(parent.is_empty() && x == "error") {
                g.entry(x).or_default().insert(y);
            }
        }
    }
    g
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        for w in t.g.get(v).into_iter().flatten() {
            if !t.index.contains_key(w.as_str()) {
                visit(t, w);
                let lw = t.low[w.as_str()];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w.as_str()) {
                let iw = t.index[w.as_str()];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let at = t.stack.iter().rposition(|x| *x == v).unwrap();
            let comp: Vec<String> = t.stack.drain(at..).map(String::from).collect();
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out.iter_mut().for_each(|c| c.sort());
    t.out
}

/// Every level of a crate with its cycles: ("crate" or "a::b", cycles).
fn check(src: &Path) -> Vec<(String, Graph, Vec<Vec<String>>)> {
    let mods = modules(src);
    let edges = edges(&mods);
    let parents: BTreeSet<Module> = mods
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    parents
        .into_iter()
        .map(|p| {
            let g = level(&p, &edges);
            let c = cycles(&g);
            let name = if p.is_empty() {
                "crate".into()
            } else {
                p.join("::")
            };
            (name, g, c)
        })
        .collect()
}

/// Cycles still there, each with what breaks it; the test fails when one
/// is gone, so that the list never outlives them.
const KNOWN: &[(&str, &str)] = &[(
    "../shim/src: crate: berth <-> runcli",
    "berth.rs dispatches to the exec-only runcli.rs, which uses berth.rs's Berth and Io",
)];

fn crate_src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn no_module_cycles_outside_error() {
    if let Some(src) = std::env::var_os("BERTH_MODGRAPH") {
        for (name, g, c) in check(Path::new(&src)) {
            println!("== {name}");
            for (a, bs) in &g {
                println!(
                    "  {a} -> {}",
                    bs.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            println!("  cycles: {c:?}");
        }
        return;
    }
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for src in ["src", "../shim/src"] {
        for (name, _, c) in check(&crate_src(src)) {
            for comp in c {
                let cycle = format!("{src}: {name}: {}", comp.join(" <-> "));
                if KNOWN.iter().any(|(k, _)| *k == cycle) {
                    seen.insert(cycle);
                } else {
                    bad.push(cycle);
                }
            }
        }
    }
    assert!(bad.is_empty(), "module import cycles:\n{}", bad.join("\n"));
    let gone: Vec<_> = KNOWN.iter().filter(|(k, _)| !seen.contains(*k)).collect();
    assert!(
        gone.is_empty(),
        "cycles gone, remove them from KNOWN: {gone:?}"
    );
}

/// How many times the `unsafe` keyword occurs in source already stripped
/// of comments and literals.
fn unsafe_count(code: &str) -> usize {
    let b = code.as_bytes();
    code.match_indices("unsafe")
        .filter(|(i, w)| {
            let end = i + w.len();
            (*i == 0 || !is_ident(b[i - 1])) && (end == b.len() || !is_ident(b[end]))
        })
        .count()
}

#[test]
fn unsafe_only_in_the_syscall_layer() {
    let mut bad = Vec::new();
    for src in ["src", "../shim/src"] {
        let root = crate_src(src);
        let mut files = Vec::new();
        walk(&root, &mut files);
        let mut in_layer = 0;
        for f in files {
            let n = unsafe_count(&strip(&std::fs::read_to_string(&f).unwrap()));
            let rel = f.strip_prefix(&root).unwrap();
            if rel.starts_with("sys") {
                in_layer += n;
            } else if n > 0 {
                bad.push(format!("{src}/{}: {n}", rel.display()));
            }
        }
        // The layer is where the walk expects it: a moved layer must not
        // pass this test by finding nothing.
        assert!(in_layer > 0, "no unsafe found in {src}/sys");
    }
    assert!(
        bad.is_empty(),
        "unsafe outside the syscall layer (src/sys/), wrap it there:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_reader_sees_edges_and_cycles() {
    let me: Module = vec!["a".into(), "b".into()];
    let text = strip("use crate::{x::{y, z}, w}; // crate::no\nlet s = \"crate::no\"; super::c::f(); self::d::g('{');");
    let got = paths(&me, &text);
    let want: Vec<Module> = [
        &["x", "y"][..],
        &["x", "z"],
        &["w"],
        &["a", "c", "f"],
        &["a", "b", "d", "g"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        drop_cfg_test_blocks("a #[cfg(test)]\nmod tests { fn f() { crate::x(); } } b"),
        "a  b"
    );
    let g: BTreeMap<String, BTreeSet<String>> = [("p", "q"), ("q", "r"), ("r", "p"), ("r", "s")]
        .iter()
        .fold(BTreeMap::new(), |mut g, (a, b)| {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g
        });
    assert_eq!(cycles(&g), vec![vec!["p", "q", "r"]]);
    let code = strip("// unsafe\nlet unsafe_x = \"unsafe\"; unsafe { f() }; unsafe fn g() {}");
    assert_eq!(unsafe_count(&code), 2);
}
