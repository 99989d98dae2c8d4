//! Decodes a captured agent stream (e.g. a QEMU `-serial file:` capture of
//! ttyS1) from stdin and prints one line per frame.
//!
//! ```text
//! cargo run -p p2pvm-agent --example decode < ttyS1.bin
//! ```

use std::io::Read;

use p2pvm_agent::proto::{Decoder, Frame};

fn main() {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("decode: cannot read stdin: {e}");
        std::process::exit(2);
    }
    let mut decoder = Decoder::new();
    let mut status = None;
    for frame in decoder.push(&bytes) {
        println!("{frame:?}");
        if let Frame::Exit(s) = frame {
            status = Some(s);
        }
    }
    if decoder.buffered() > 0 {
        println!("(truncated: {} bytes left over)", decoder.buffered());
    }
    // Mirror the command's status, like the host-side runner would.
    std::process::exit(status.map_or(125, |s| s.clamp(0, 255)));
}
