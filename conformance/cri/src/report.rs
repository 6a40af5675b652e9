//! One line per check and the final tally, in the same format as conformance/engines.

#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
}

impl Report {
    pub fn ok(&mut self, name: &str) {
        self.passed += 1;
        println!("ok   {name}");
    }

    pub fn fail(&mut self, name: &str, why: impl std::fmt::Display) {
        self.failed += 1;
        println!("FAIL {name} -- {why}");
    }

    /// Informational line: a measured figure or an optional feature the shim lacks. Never
    /// counted, so a missing optional feature cannot turn the suite red or green.
    pub fn note(&mut self, name: &str, what: impl std::fmt::Display) {
        println!("note {name}: {what}");
    }

    /// `check(name, Ok(()))` passes; an `Err(why)` fails with the reason.
    pub fn check(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => self.ok(name),
            Err(e) => self.fail(name, e),
        }
    }

    pub fn summary(&self) -> bool {
        println!("{} passed, {} failed", self.passed, self.failed);
        self.failed == 0
    }
}

/// `Err` with the expected and actual values when they differ.
pub fn want_eq<T: PartialEq + std::fmt::Debug>(what: &str, want: T, got: T) -> Result<(), String> {
    if want == got {
        Ok(())
    } else {
        Err(format!("{what}: want {want:?}, got {got:?}"))
    }
}
