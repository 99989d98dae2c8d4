//! The `p2pvm` command.

fn main() {
    p2pvm::entry::main()
}
