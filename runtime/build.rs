//! Links the `berth` binary as a static PIE on glibc targets.
//!
//! A `berth run` maps its binary once and runs briefly, so what its peak
//! RSS holds is mostly mapped code: dynamic, libc, ld.so, libgcc_s and
//! libseccomp took 1.6 MB of its 5.7 MB (conformance/bench/README.md,
//! "peak RSS"), and the relocations of its own relocated data 238 kB more.
//! Static, with packed relative relocations, it carries only the libc code
//! it calls. `BERTH_LINK=dynamic` turns it off.

#[path = "build/static_link.rs"]
mod static_link;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/static_link.rs");
    println!("cargo::rustc-check-cfg=cfg(static_berth)");
    if static_link::bins("BERTH_LINK") {
        println!("cargo:rustc-cfg=static_berth");
    }
}
