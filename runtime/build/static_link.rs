//! Static PIE linking of a package's bin targets on glibc, shared by the
//! berth binary's and the shim's build scripts (each includes this file).
//!
//! A dynamic binary maps libc, ld.so and libgcc_s, and the kernel maps in
//! (fault-around) far more of these shared libraries than a short-lived
//! berth or an idle shim runs: 1.6 to 1.9 MB of resident memory. Static,
//! the binary carries only the libc code it calls. Only bin targets are
//! static: tests, examples and the library are built as usual.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The native libraries rustc names for berth's and the shim's dependency trees
/// (`-lNAME`), and the static archives that stand in for them: libgcc_s
/// has no archive, its static counterpart is libgcc_eh; glibc's archives
/// depend on each other and on libgcc, so libc is a group, as `gcc -static`
/// links it; libseccomp comes with the berth library.
const LIBS: &[(&str, &[&str])] = &[
    ("gcc_s", &["libgcc_eh.a"]),
    ("util", &["libutil.a"]),
    ("rt", &["librt.a"]),
    ("pthread", &["libpthread.a"]),
    ("m", &["libm.a"]),
    ("dl", &["libdl.a"]),
    ("c", &["libc.a", "libgcc.a", "libgcc_eh.a"]),
    ("seccomp", &["libseccomp.a"]),
];

/// Link the package's bin targets as static PIEs unless the target is not
/// linux-gnu, is already static, or `env_off` is set to "dynamic". Returns
/// whether it did.
pub fn bins(env_off: &str) -> bool {
    println!("cargo:rerun-if-env-changed={env_off}");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || static_crt
        || var(env_off) == "dynamic"
    {
        return false;
    }
    let linker = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());

    // rustc links the std libraries with -Bdynamic after -Bstatic hints of
    // its own, which would undo -static-pie for them: ld would pick
    // libc.so and produce a binary that cannot start. ld looks for
    // libNAME.so and then libNAME.a in each directory in turn, so a
    // directory searched first, holding a linker script libNAME.a per
    // library, makes every -lNAME static whatever mode ld is in.
    let dir = PathBuf::from(var("OUT_DIR")).join("static-link");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create OUT_DIR/static-link");
    for (lib, parts) in LIBS {
        let paths: Result<Vec<PathBuf>, &str> = parts
            .iter()
            .map(|p| find_archive(&linker, p).ok_or(*p))
            .collect();
        // A missing archive fails the link only if the build asks for it.
        let script = match paths {
            Ok(paths) => group(&paths, &[]),
            Err(missing) => format!(
                "ASSERT(0, \"{missing} not found by {linker}: install it, \
                 or build with {env_off}=dynamic\")\n"
            ),
        };
        fs::write(dir.join(format!("lib{lib}.a")), script).expect("write linker script");
    }
    println!("cargo:rustc-link-arg-bins=-static-pie");
    // A static PIE relocates itself at startup; in RELR form its relative
    // relocations take about 1 kB instead of 70 kB of mapped file.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    true
}

/// The archive's path as the linker's compiler driver finds it.
pub fn find_archive(linker: &str, name: &str) -> Option<PathBuf> {
    let out = Command::new(linker)
        .arg(format!("-print-file-name={name}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // The driver echoes the bare name when it finds nothing.
    (path.is_absolute() && path.is_file()).then_some(path)
}

/// A linker script that links `paths` and then the libraries `-lNAME`
/// for each of `libs`, as one group.
pub fn group(paths: &[PathBuf], libs: &[&str]) -> String {
    let quoted = paths.iter().map(|p| quote(p));
    let libs = libs.iter().map(|l| format!("-l{l}"));
    let items: Vec<String> = quoted.chain(libs).collect();
    format!("GROUP({})\n", items.join(" "))
}

fn quote(p: &Path) -> String {
    format!("\"{}\"", p.display())
}
