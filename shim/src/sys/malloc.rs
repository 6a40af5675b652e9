//! The allocator's tuning, which no crate wraps.

/// At most one malloc arena. glibc gives each thread that allocates an
/// arena of its own otherwise, and the shim's threads mostly sleep.
pub fn one_arena() {
    // SAFETY: mallopt only sets a tunable of the allocator; M_ARENA_MAX
    // takes any positive value. glibc takes its own lock around it.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}
