//! The berth command line: NUL-separated arguments through the binary's clap
//! definition (runtime/src/cli.rs, included here since it is no part of the
//! library) into the library's option types, and every argument through
//! `update`'s size parser. No command runs. The checks are in cli/fuzz.rs.
#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;

#[path = "../../runtime/src"]
#[allow(dead_code)]
mod src {
    pub mod cli;
}
// cli's modules name each other through crate::cli.
use src::cli;

fuzz_target!(|data: &[u8]| {
    let mut args = vec![OsString::from("berth")];
    args.extend(
        data.split(|b| *b == 0)
            .map(|a| OsStr::from_bytes(a).to_owned()),
    );
    cli::fuzz::fuzz_args(&args);
    for a in &args[1..] {
        if let Some(s) = a.to_str() {
            cli::fuzz::fuzz_size(s);
        }
    }
});
