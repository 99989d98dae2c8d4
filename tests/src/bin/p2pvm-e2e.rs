//! The p2pvm command, for the end-to-end tests.

fn main() {
    p2pvm::entry::main()
}
