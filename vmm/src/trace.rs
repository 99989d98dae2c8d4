//! `p2pvm run --trace FILE`: one JSON line per routed request
//! ([`pcie_core::TraceRecord::to_json`]): requester, address, length, the
//! links it crossed and its outcome.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use pcie_core::Fabric;

use crate::error::{Error, Result};

/// Creates `path` and installs a sink that appends every routed request
/// to it. [`stop`] flushes it.
pub fn start(fabric: &Fabric, path: &Path) -> Result<()> {
    let file = File::create(path)
        .map_err(|e| Error::io(format!("creating trace file {}", path.display()), e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut failed = false;
    let name = path.display().to_string();
    fabric.set_trace(Some(Box::new(move |rec| {
        if failed {
            return;
        }
        let line = rec.to_json();
        if let Err(e) = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            log::error!("trace {name}: {e}; tracing stops");
            failed = true;
        }
    })));
    Ok(())
}

/// Removes the sink, which flushes the file.
pub fn stop(fabric: &Fabric) {
    fabric.set_trace(None);
}
