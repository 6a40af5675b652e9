//! Links the `berth` binary as a static PIE on glibc targets, when asked
//! (`BERTH_LINK=static`); dynamic by default.
//!
//! Static, `berth run`'s peak RSS drops from 5.0 to 4.1 MiB: dynamic, libc,
//! ld.so, libgcc_s and libseccomp take 1.6 MB of it, and the relocations of
//! its relocated data 238 kB more (conformance/bench/README.md, "peak RSS").
//! Not the default because of CVE-2019-5736: a container process that execs
//! a `#!/proc/self/exe` script runs the host's berth binary inside the
//! container. A dynamic berth fails that exec only where the rootfs lacks
//! glibc's loader (tests/cve.rs uses such a rootfs); a static one runs in
//! any rootfs. Static linking waits for berth to run the container from a
//! sealed copy of itself.

#[path = "build/static_link.rs"]
mod static_link;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/static_link.rs");
    println!("cargo:rerun-if-env-changed=BERTH_LINK");
    println!("cargo::rustc-check-cfg=cfg(static_berth)");
    if std::env::var("BERTH_LINK").is_ok_and(|v| v == "static") && static_link::bins("BERTH_LINK") {
        println!("cargo:rustc-cfg=static_berth");
    }
}
