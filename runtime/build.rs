//! Links the `berth` binary as a static PIE on glibc targets;
//! `BERTH_LINK=dynamic` links it dynamically. On musl targets (the release
//! build) it is static anyway, and build/musl.rs links libseccomp.
//!
//! Static, `berth run`'s peak RSS drops by about 0.9 MiB: dynamic, libc,
//! ld.so, libgcc_s and libseccomp take 1.6 MB of it, and the relocations
//! of its relocated data 238 kB more (conformance/bench/README.md, "peak
//! RSS"). CVE-2019-5736 once kept it dynamic: a container process that
//! execs a `#!/proc/self/exe` script runs the binary of the berth that
//! cloned it inside the container, and a static binary starts in any
//! rootfs. Every command that makes container processes now re-executes
//! itself from a sealed copy first (src/seal.rs), so what such a process
//! can reach is that read-only copy, never the host's binary
//! (tests/cve.rs).

#[path = "build/musl.rs"]
mod musl;
#[path = "build/static_link.rs"]
mod static_link;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/static_link.rs");
    println!("cargo:rerun-if-changed=build/musl.rs");
    println!("cargo::rustc-check-cfg=cfg(static_berth)");
    if static_link::bins("BERTH_LINK") {
        println!("cargo:rustc-cfg=static_berth");
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let linux = var("CARGO_CFG_TARGET_OS") == "linux";
    let env = var("CARGO_CFG_TARGET_ENV");
    if linux && env == "musl" {
        musl::bins();
    }
    // berth starts at src/sys/entry.rs, which seals a command that makes
    // container processes before libc and Rust start (src/seal.rs says
    // why); -u pulls it out of the library's archive.
    if linux && var("CARGO_CFG_TARGET_ARCH") == "x86_64" && (env == "gnu" || env == "musl") {
        println!("cargo:rustc-link-arg-bin=berth=-Wl,-u,berth_entry,-e,berth_entry");
    }
}
