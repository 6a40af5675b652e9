//! Symlink escapes, one row per kind of mount destination berth handles: a
//! rootfs whose destination, or a parent of it, is a symlink pointing out of
//! the rootfs (absolute, or climbing with "../"). The mount must land on the
//! same path inside the rootfs, as if the rootfs were "/", or the container
//! must fail with its reason; the host directory the link names stays empty
//! and unmounted either way.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::Bundle;
use serde_json::{json, Value};

/// What the destination is when it exists: a directory or a file.
#[derive(Clone, Copy, PartialEq)]
enum Node {
    Dir,
    File,
}

struct Kind {
    name: &'static str,
    node: Node,
    /// Put `dest` into the config.
    add: fn(&mut Bundle, &str),
    /// Shell test, run in the container, that `$P` (the in-rootfs path) got it.
    check: &'static str,
}

fn mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

const MOUNTED: &str = "grep -q \" $P \" /proc/self/mountinfo";

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "bind-dir",
            node: Node::Dir,
            add: |b, d| {
                let src = b.dir.join("src-dir");
                std::fs::create_dir_all(&src).unwrap();
                mount(
                    b,
                    json!({"destination": d, "type": "bind", "source": src, "options": ["rbind"]}),
                );
            },
            check: MOUNTED,
        },
        Kind {
            name: "bind-file",
            node: Node::File,
            add: |b, d| {
                let src = b.dir.join("src-file");
                std::fs::write(&src, "bound").unwrap();
                mount(
                    b,
                    json!({"destination": d, "type": "bind", "source": src, "options": ["bind"]}),
                );
            },
            check: "grep -q bound \"$P\"",
        },
        Kind {
            name: "tmpfs",
            node: Node::Dir,
            add: |b, d| {
                mount(
                    b,
                    json!({"destination": d, "type": "tmpfs", "source": "tmpfs"}),
                )
            },
            check: MOUNTED,
        },
        Kind {
            name: "proc",
            node: Node::Dir,
            add: |b, d| {
                mount(
                    b,
                    json!({"destination": d, "type": "proc", "source": "proc"}),
                )
            },
            check: MOUNTED,
        },
        Kind {
            name: "sysfs",
            node: Node::Dir,
            add: |b, d| {
                mount(
                    b,
                    json!({"destination": d, "type": "sysfs", "source": "sysfs", "options": ["ro"]}),
                )
            },
            check: MOUNTED,
        },
        Kind {
            name: "mqueue",
            node: Node::Dir,
            add: |b, d| {
                mount(
                    b,
                    json!({"destination": d, "type": "mqueue", "source": "mqueue"}),
                )
            },
            check: MOUNTED,
        },
        Kind {
            name: "devpts",
            node: Node::Dir,
            add: |b, d| {
                mount(
                    b,
                    json!({"destination": d, "type": "devpts", "source": "devpts",
                    "options": ["newinstance", "ptmxmode=0666"]}),
                )
            },
            check: MOUNTED,
        },
        Kind {
            name: "cgroup",
            node: Node::Dir,
            add: |b, d| {
                mount(
                    b,
                    json!({"destination": d, "type": "cgroup", "source": "cgroup", "options": ["ro"]}),
                )
            },
            check: MOUNTED,
        },
        Kind {
            name: "overlay",
            node: Node::Dir,
            add: |b, d| {
                for s in ["lower", "upper", "work"] {
                    std::fs::create_dir_all(b.dir.join(s)).unwrap();
                }
                let o = format!(
                    "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
                    b.dir.display()
                );
                mount(
                    b,
                    json!({"destination": d, "type": "overlay", "source": "overlay", "options": [o]}),
                );
            },
            check: MOUNTED,
        },
        Kind {
            name: "masked-dir",
            node: Node::Dir,
            add: |b, d| b.config["linux"]["maskedPaths"] = json!([d]),
            check: MOUNTED,
        },
        Kind {
            name: "masked-file",
            node: Node::File,
            add: |b, d| b.config["linux"]["maskedPaths"] = json!([d]),
            check: "test -c \"$P\"",
        },
        Kind {
            name: "readonly-dir",
            node: Node::Dir,
            add: |b, d| b.config["linux"]["readonlyPaths"] = json!([d]),
            check: "grep \" $P \" /proc/self/mountinfo | grep -q \" ro,\"",
        },
        Kind {
            name: "device",
            node: Node::File,
            add: |b, d| {
                b.config["linux"]["devices"] =
                    json!([{"path": d, "type": "c", "major": 1, "minor": 5, "fileMode": 438}])
            },
            check: "test -c \"$P\"",
        },
    ]
}

/// How the rootfs leads out: the link, where it points, and the destination.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// /esc -> <host dir>, destination /esc/<kind>
    AbsoluteParent,
    /// /esc -> ../../../../..<host dir>, destination /esc/<kind>
    RelativeParent,
    /// /<kind>-link -> <host dir>/<kind>, destination /<kind>-link
    AbsoluteFinal,
}

#[test]
fn symlinked_destinations_stay_inside_the_rootfs() {
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for k in kinds() {
        for form in [
            Form::AbsoluteParent,
            Form::RelativeParent,
            Form::AbsoluteFinal,
        ] {
            let mut b = Bundle::new("mntesc");
            b.config["linux"]["maskedPaths"] = json!([]);
            b.config["linux"]["readonlyPaths"] = json!([]);
            b.config["root"]["readonly"] = json!(false);
            // The host directory the links name, and its copy in the rootfs.
            let host = b.dir.join("host");
            std::fs::create_dir(&host).unwrap();
            let rootfs = b.dir.join("rootfs");
            let inner = rootfs.join(host.strip_prefix("/").unwrap());
            std::fs::create_dir_all(&inner).unwrap();
            let target = host.join(k.name);
            // Masks, read-only paths and a final link need what they name.
            match k.node {
                Node::Dir => std::fs::create_dir(inner.join(k.name)).unwrap(),
                Node::File => std::fs::write(inner.join(k.name), "inner").unwrap(),
            }
            if k.name == "device" && !matches!(form, Form::AbsoluteFinal) {
                // A device is made, not mounted: give it a fresh name.
                std::fs::remove_file(inner.join(k.name)).unwrap();
            }
            let dest = match form {
                Form::AbsoluteParent => {
                    symlink(&host, rootfs.join("esc")).unwrap();
                    format!("/esc/{}", k.name)
                }
                Form::RelativeParent => {
                    let up = "../".repeat(12);
                    symlink(format!("{up}{}", host.display()), rootfs.join("esc")).unwrap();
                    format!("/esc/{}", k.name)
                }
                Form::AbsoluteFinal => {
                    let link = format!("{}-link", k.name);
                    symlink(&target, rootfs.join(&link)).unwrap();
                    format!("/{link}")
                }
            };
            (k.add)(&mut b, &dest);
            b.sh(&format!(
                "P={}; if {}; then echo INSIDE; else echo MISSING; fi",
                target.display(),
                k.check
            ));
            let (code, out, err) = b.run();
            let outcome = if code == 0 && out == "INSIDE\n" {
                "inside"
            } else if code != 0 && err.starts_with("berth: ") && err.lines().count() == 1 {
                "refused"
            } else {
                failures.push(format!(
                    "{} {form:?}: exit {code}, out {out:?}, err {err:?}",
                    k.name
                ));
                "WRONG"
            };
            let left: Vec<_> = std::fs::read_dir(&host)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            if !left.is_empty() {
                failures.push(format!(
                    "{} {form:?}: created on the host: {left:?}",
                    k.name
                ));
            }
            let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            if mi.lines().any(|l| l.contains(host.to_str().unwrap())) {
                failures.push(format!("{} {form:?}: mounted on the host", k.name));
            }
            rows.push(format!(
                "{:<13} {:<15} {outcome} {}",
                k.name,
                format!("{form:?}"),
                err.trim()
            ));
            b.assert_clean();
            drop(b);
            assert!(!Path::new(&host).exists());
        }
    }
    // The table, for the log.
    for r in &rows {
        println!("{r}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
