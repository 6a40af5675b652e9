//! The `berth` command: runc's command line over berth's library API.

mod cli;

// Short-lived commands allocate without system calls (sys/arena.rs).
#[global_allocator]
static ALLOC: berth::Arena = berth::Arena;

fn main() {
    std::process::exit(cli::main());
}
