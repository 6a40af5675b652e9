//! The `berth` command: runc's command line over berth's library API.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
