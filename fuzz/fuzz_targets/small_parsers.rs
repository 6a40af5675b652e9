//! Signal names and numbers (`kill`), durations (`events --interval`) and
//! the state record berth reads back from disk (state.json). (`update`'s
//! sizes are parsed by the binary: see the cli target.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        signal(s);
        let _ = berth::events::duration::parse("--interval", s);
    }
    if let Ok(st) = serde_json::from_slice::<berth::state::Stored>(data) {
        // What is read back is written again on the next change.
        let text = serde_json::to_string(&st).expect("serialize a state");
        let back: berth::state::Stored = serde_json::from_str(&text).expect("read back a state");
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
});

fn signal(s: &str) {
    let Ok(n) = berth::signal::parse(s) else {
        return;
    };
    assert!((1..=libc::SIGRTMAX()).contains(&n), "{s:?} is {n}");
    // Names are case-blind and take an optional SIG prefix.
    if s.parse::<i32>().is_err() && !s.to_ascii_uppercase().starts_with("SIG") {
        assert_eq!(
            berth::signal::parse(&format!("SIG{s}")).ok(),
            Some(n),
            "{s:?}"
        );
        assert_eq!(
            berth::signal::parse(&s.to_ascii_lowercase()).ok(),
            Some(n),
            "{s:?}"
        );
    }
}
