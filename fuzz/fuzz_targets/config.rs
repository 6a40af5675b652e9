//! config.json from parsing to the last check before the first syscall of
//! `create`: the spec's requirements, unsupported fields, hooks, the seccomp
//! profile (compiled with libseccomp, never loaded).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<oci_spec::runtime::Spec>(data) else {
        return;
    };
    let _ = berth::validate::required(&spec);
    let _ = berth::validate::unsupported(&spec);
    let _ = berth::hooks::validate(spec.hooks().as_ref());
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let _ = berth::seccomp::check_exec_allowed(s);
        if berth::seccomp::validate(s).is_ok() {
            let _ = berth::seccomp::compile(s);
        }
    }
});
