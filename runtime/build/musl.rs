//! Linking the `berth` binary for a musl target (x86_64-unknown-linux-musl),
//! the release build (release/build-pgo.sh; conformance/bench/README.md,
//! "musl").
//!
//! Why musl: glibc probes the CPU and its caches at every start (~70
//! `cpuid` instructions, each a trap to the hypervisor on a VM: 0.7 ms of
//! every berth command on the 2-core test VM); musl probes nothing.
//!
//! musl targets link statically already. What is left is libseccomp: there
//! is no musl build of it in the distributions, so the glibc one's static
//! archive is linked, which needs one glibc-only symbol (fortify_musl.c).
//! libseccomp-sys asks for `-lseccomp` as a shared library, and ld would
//! take libseccomp.so (a static PIE that calls into a library it never
//! loads); as on glibc, a linker script named libseccomp.a in a directory
//! searched first stands in for it.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Compile the fortify shim and link it into the bin targets; relative
/// relocations are packed as on glibc (static_link.rs).
pub fn bins() {
    println!("cargo:rerun-if-changed=build/fortify_musl.c");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("fortify_musl.o");
    let lib = out.join("libfortify_musl.a");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(&cc)
        .args(["-c", "-O2", "-fPIC", "-o"])
        .arg(&obj)
        .arg("build/fortify_musl.c"));
    let _ = std::fs::remove_file(&lib);
    run(Command::new("ar").arg("crs").arg(&lib).arg(&obj));
    let cc_archive = |name: &str| {
        crate::static_link::find_archive(&cc, name)
            .unwrap_or_else(|| panic!("{name} not found by {cc}: install libseccomp-dev"))
    };
    // rustc names libseccomp after musl's libc, so the group brings its
    // own: -lc is musl's, found in the target's self-contained directory
    // before any system one.
    let script = crate::static_link::group(&[cc_archive("libseccomp.a"), lib], &["c"]);
    std::fs::write(out.join("libseccomp.a"), script).expect("write linker script");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}
