//! build.rs links the shim statically. A static link that goes wrong, for
//! example a library that ld resolves to its .so, yields a binary that
//! crashes at once or that still needs ld.so.

#[cfg(static_shim)]
#[test]
fn shim_is_static_and_starts() {
    use std::process::Command;
    let exe = env!("CARGO_BIN_EXE_containerd-shim-berth-v2");
    // ld.so lists a dynamic binary's libraries instead of running it; a
    // static binary ignores the variable and runs.
    let out = Command::new(exe)
        .arg("-v")
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .expect("run the shim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{exe} -v: {:?}\n{stdout}", out.status);
    assert_eq!(
        stdout,
        format!("containerd-shim-berth-v2 {}\n", env!("CARGO_PKG_VERSION"))
    );
}
