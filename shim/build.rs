//! Links the shim binary as a static PIE on glibc targets.
//!
//! Every container has its own shim, so the shim's resident memory counts
//! once per container: 1.9 MB of a dynamic shim's 3.2 MB RSS were libc,
//! ld.so and libgcc_s. See README.md, "Memory", and ../runtime/build.
//! `BERTH_SHIM_LINK=dynamic` turns it off.

#[path = "../runtime/build/static_link.rs"]
mod static_link;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../runtime/build/static_link.rs");
    println!("cargo::rustc-check-cfg=cfg(static_shim)");
    if static_link::bins("BERTH_SHIM_LINK") {
        println!("cargo:rustc-cfg=static_shim");
    }
}
