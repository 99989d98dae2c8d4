//! The fabric's link counters as a JSON file the host can read during the
//! run (rewritten twice a second) and after it (written at exit): every
//! node's link (`links`) and the requests the fabric refused (`refused`,
//! [`pcie_core::RefusedCounters`]).

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
        let stats: String = fabric
            .with_function(*id, |f| f.stats())
            .iter()
            .map(|(k, v)| format!(", \"{k}\": {v}"))
            .collect();
        // Root and downstream ports: the link below, and how often it
        // was brought down.
        let link = fabric
            .link_state(*id)
            .map(|l| {
                let state = if l.up { "up" } else { "down" };
                format!(", \"link\": \"{state}\", \"link_downs\": {}", l.downs)
            })
            .unwrap_or_default();
        out += &format!(
            "  {{\"name\": \"{}\", \"kind\": \"{kind}\", \"bdf\": \"{bdf}\", \"up_bytes\": {}, \"up_tlps\": {}, \"down_bytes\": {}, \"down_tlps\": {}, \"refused_bytes\": {}{link}{stats}}}{}\n",
            name.replace('\\', "\\\\").replace('"', "\\\""),
            c.up_bytes,
            c.up_tlps,
            c.down_bytes,
            c.down_tlps,
            fabric.refused_bytes(*id),
            if i + 1 == nodes.len() { "" } else { "," }
        );
    }
    let r = fabric.refused();
    let iommu = match fabric.iommu_stats() {
        Some(mut s) => {
            // What the router saw the IOMMU translate into a peer's BAR.
            let (n, bytes) = fabric.iommu_p2p();
            s.extend([("p2p_requests", n), ("p2p_bytes", bytes)]);
            let fields: Vec<String> = s.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!(",\n\"iommu\": {{{}}}", fields.join(", "))
        }
        None => String::new(),
    };
    out += &format!(
        "],\n\"refused\": {{\"bus_master_disabled\": {}, \"unsupported_request\": {}, \"completer_abort\": {}, \"acs_violation\": {}, \"iommu_fault\": {}, \"poisoned\": {}, \"at_root_complex\": {}, \"at_root_complex_bytes\": {}}}{iommu}}}\n",
        r.bus_master_disabled,
        r.unsupported_request,
        r.completer_abort,
        r.acs_violation,
        r.iommu_fault,
        r.poisoned,
        r.at_root_complex,
        r.at_root_complex_bytes
    );
    out
}

/// A counters file kept up to date by a background thread.
pub struct CountersFile {
    path: PathBuf,
    fabric: Arc<Fabric>,
    nodes: Vec<(String, NodeId)>,
    stop: Arc<AtomicBool>,
    writer: Option<thread::JoinHandle<()>>,
}

impl CountersFile {
    /// Starts rewriting `path` for `built`.
    pub fn start(path: PathBuf, built: &VmFabric) -> Self {
        let mut me = CountersFile {
            path,
            fabric: built.fabric.clone(),
            nodes: built.nodes.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            writer: None,
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
                while !stop.load(Ordering::Acquire) {
                    write(&path, &render(&fabric, &nodes));
                    // Woken early by finish().
                    thread::park_timeout(PERIOD);
                }
            });
        match spawned {
            Ok(h) => me.writer = Some(h),
            Err(e) => log::warn!("counters: cannot start the writer thread: {e}"),
        }
        me
    }

    /// Stops the writer thread and waits for it, then writes the final
    /// counters: once this returns, the file is final and nothing else
    /// writes it.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.writer.take() {
            h.thread().unpark();
            if h.join().is_err() {
                log::warn!("counters: the writer thread panicked");
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::{build, NoRam};
    use crate::topology::Topology;

    #[test]
    fn finish_joins_the_writer_and_leaves_the_final_counters() {
        let topo = Topology::load(None).unwrap();
        let memory = 512 << 20;
        let built = build(
            &topo,
            memory,
            crate::layout::ram_regions(memory),
            Arc::new(NoRam),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("p2pvm-counters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("links.json");
        let file = CountersFile::start(path.clone(), &built);
        // Let the writer run at least once.
        thread::sleep(Duration::from_millis(50));
        let before = std::fs::read_to_string(&path).unwrap();
        let started = std::time::Instant::now();
        file.finish();
        // finish() woke the writer instead of waiting out its period.
        assert!(started.elapsed() < PERIOD, "{:?}", started.elapsed());
        let last = std::fs::read_to_string(&path).unwrap();
        assert_eq!(last, render(&built.fabric, &built.nodes));
        assert!(last.contains("\"name\": \"rp1\""), "{last}");
        assert!(before.starts_with("{\"links\": ["), "{before}");
        // Nothing writes it afterwards, and no temporary file is left.
        thread::sleep(PERIOD + Duration::from_millis(100));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), last);
        assert!(!path.with_extension("tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
