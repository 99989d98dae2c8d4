//! The fabric's link counters as a JSON file the host can read during the
//! run (rewritten twice a second) and after it (written at exit).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use pcie_core::{Fabric, NodeId, NodeKind};

use crate::fabric::VmFabric;

/// How often the file is rewritten while the guest runs.
const PERIOD: Duration = Duration::from_millis(500);

/// Renders every node's link counters as one JSON document.
pub fn render(fabric: &Fabric, nodes: &[(String, NodeId)]) -> String {
    let mut out = String::from("{\"links\": [\n");
    for (i, (name, id)) in nodes.iter().enumerate() {
        let c = fabric.counters(*id);
        let bdf = fabric
            .bdf(*id)
            .map(|b| b.to_string())
            .unwrap_or_else(|| "unassigned".into());
        let kind = match fabric.kind(*id) {
            NodeKind::HostBridge => "host-bridge",
            NodeKind::RootPort => "root-port",
            NodeKind::SwitchUpstream => "switch-upstream",
            NodeKind::SwitchDownstream => "switch-downstream",
            NodeKind::Endpoint => "endpoint",
        };
        out += &format!(
            "  {{\"name\": \"{}\", \"kind\": \"{kind}\", \"bdf\": \"{bdf}\", \"up_bytes\": {}, \"up_tlps\": {}, \"down_bytes\": {}, \"down_tlps\": {}}}{}\n",
            name.replace('\\', "\\\\").replace('"', "\\\""),
            c.up_bytes,
            c.up_tlps,
            c.down_bytes,
            c.down_tlps,
            if i + 1 == nodes.len() { "" } else { "," }
        );
    }
    out + "]}\n"
}

/// A counters file kept up to date by a background thread.
pub struct CountersFile {
    path: PathBuf,
    fabric: Arc<Fabric>,
    nodes: Vec<(String, NodeId)>,
    stop: Arc<AtomicBool>,
}

impl CountersFile {
    /// Starts rewriting `path` for `built`.
    pub fn start(path: PathBuf, built: &VmFabric) -> Self {
        let me = CountersFile {
            path,
            fabric: built.fabric.clone(),
            nodes: built.nodes.clone(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (path, fabric, nodes, stop) = (
            me.path.clone(),
            me.fabric.clone(),
            me.nodes.clone(),
            me.stop.clone(),
        );
        let spawned = thread::Builder::new()
            .name("counters".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    write(&path, &render(&fabric, &nodes));
                    thread::sleep(PERIOD);
                }
            });
        if let Err(e) = spawned {
            log::warn!("counters: cannot start the writer thread: {e}");
        }
        me
    }

    /// Writes the final counters and stops the thread.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        write(&self.path, &render(&self.fabric, &self.nodes));
    }
}

/// Replaces the file atomically, so readers never see half a document.
fn write(path: &PathBuf, text: &str) {
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)) {
        log::warn!("counters: cannot write {}: {e}", path.display());
    }
}
