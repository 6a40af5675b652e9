//! Signal names and numbers (`kill`), durations (`events --interval`) and
//! the state record berth reads back from disk (state.json).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = berth::signal::parse(s);
        let _ = berth::events::duration::parse("--interval", s);
    }
    let _ = serde_json::from_slice::<berth::state::Stored>(data);
});
