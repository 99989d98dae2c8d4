//! The control socket: JSON lines over a UNIX socket, in the spirit of
//! QMP (`docs/CONTROL.md`). A client sends
//! `{"execute": "NAME", "arguments": {...}, "id": ANY}` and gets one line
//! back: `{"return": {...}, "id": ANY}` or
//! `{"error": {"class": "...", "desc": "..."}, "id": ANY}`.
//!
//! [`Control::execute`] runs on the socket's threads, never on a vCPU. A
//! bad request gets an error reply; nothing a client sends stops the VM
//! or the socket.

mod client;
mod server;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pcie_core::{BarMove, ErrorSeverity, Fabric, NodeId, RcP2pPolicy};
use serde_json::{json, Map, Value};

use crate::topology::AcsBit;

pub use client::{ctl, parse_args, request, stats, table};
pub use server::{read_line, relay, serve_stream, serve_tty, serve_unix, Line, MAX_LINE};

/// Every command, with its one-line description (the greeting lists them).
pub const COMMANDS: &[(&str, &str)] = &[
    ("query-commands", "the commands and what they do"),
    ("query-topology", "every node: name, kind, BDF"),
    ("query-counters", "link counters and refused requests, as --counters writes them"),
    ("reset-counters", "zero every counter"),
    ("trace-start", "write one JSON line per routed request to \"file\""),
    ("trace-stop", "stop the trace and flush its file"),
    ("set-acs-fault", "on \"port\": \"stuck_on\" bits applied while Control reads them clear; \"hidden\": drop the capability"),
    ("clear-acs-fault", "heal \"port\""),
    ("set-rc-policy", "root complex P2P: \"p2p\" = \"forward\" | \"unsupported-request\""),
    ("inject-error", "an error message from \"node\" to its root port: \"severity\" = \"correctable\" | \"nonfatal\" | \"fatal\""),
    ("inject-tlp-fault", "requests crossing \"node\" get \"tlp\" = \"completer-abort\" | \"poisoned\"; \"p2p_only\" (default true), \"count\" (default all); logged in the node's AER"),
    ("clear-tlp-faults", "disarm every TLP fault"),
    ("iommu-fault", "VT-d misbehaves: \"what\" = drop-mappings | poison-mappings | context-not-present | pass-through | translate | wrong-domain | ignore-invalidations | mask-fault-event | fail-descriptors | overflow-records; \"device\", \"peer_only\", \"domain\", \"count\""),
    ("iommu-clear-faults", "heal the IOMMU"),
    ("link-down", "surprise removal below \"port\" (a root or downstream port): its link goes down, what is below is reset and answers nothing"),
    ("link-up", "the link below \"port\" comes back up: what is below reappears, in its power-on state"),
];

/// Applies the BAR moves a command caused (the VMM's memory slots and
/// doorbells).
pub type MoveSink = Arc<dyn Fn(&[BarMove]) + Send + Sync>;

/// What the commands act on.
pub struct Control {
    fabric: Arc<Fabric>,
    nodes: Vec<(String, NodeId)>,
    trace: Mutex<Option<PathBuf>>,
    moves: Option<MoveSink>,
    iommu: Option<Arc<vtd::Vtd>>,
}

/// A command's failure: a QMP-style class and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `GenericError`, `CommandNotFound`, `InvalidJson`, `LineTooLong`.
    pub class: &'static str,
    /// What went wrong.
    pub desc: String,
}

fn generic(desc: impl Into<String>) -> Failure {
    Failure {
        class: "GenericError",
        desc: desc.into(),
    }
}

/// An error reply line.
pub fn error_reply(class: &str, desc: &str, id: Option<&Value>) -> String {
    let mut v = json!({"error": {"class": class, "desc": desc}});
    if let Some(id) = id {
        v["id"] = id.clone();
    }
    v.to_string()
}

impl Control {
    /// Commands over `built`'s fabric, nodes and IOMMU; BARs that a
    /// command moves are handed to `moves`.
    pub fn new(built: &crate::fabric::VmFabric, moves: Option<MoveSink>) -> Arc<Self> {
        Arc::new(Control {
            fabric: built.fabric.clone(),
            nodes: built.nodes.clone(),
            trace: Mutex::new(None),
            moves,
            iommu: built.iommu.clone(),
        })
    }

    fn apply(&self, moved: &[BarMove]) {
        if let Some(m) = &self.moves {
            m(moved);
        }
    }

    /// The first line a client gets.
    pub fn greeting() -> String {
        let names: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
        json!({"p2pvm": {"version": env!("CARGO_PKG_VERSION"), "commands": names}}).to_string()
    }

    /// Runs one request line and returns the reply line.
    pub fn handle(&self, line: &str) -> String {
        let req: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return error_reply("InvalidJson", &format!("not JSON: {e}"), None),
        };
        let id = req.get("id");
        let Some(name) = req.get("execute").and_then(Value::as_str) else {
            return error_reply(
                "GenericError",
                "a request is {\"execute\": \"COMMAND\", \"arguments\": {...}}",
                id,
            );
        };
        let empty = Map::new();
        let args = match req.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return error_reply("GenericError", "\"arguments\" must be an object", id),
        };
        match self.execute(name, args) {
            Ok(v) => {
                let mut r = json!({"return": v});
                if let Some(id) = id {
                    r["id"] = id.clone();
                }
                r.to_string()
            }
            Err(f) => error_reply(f.class, &f.desc, id),
        }
    }

    fn node(&self, args: &Map<String, Value>, key: &str) -> Result<NodeId, Failure> {
        let name = str_arg(args, key)?;
        self.nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .ok_or_else(|| generic(format!("no node '{name}'")))
    }

    /// Runs command `name`.
    pub fn execute(&self, name: &str, args: &Map<String, Value>) -> Result<Value, Failure> {
        let f = &self.fabric;
        match name {
            "query-commands" => Ok(COMMANDS
                .iter()
                .map(|(n, d)| json!({"name": n, "help": d}))
                .collect()),
            "query-topology" => Ok(self
                .nodes
                .iter()
                .map(|(n, id)| {
                    json!({
                        "name": n,
                        "kind": format!("{:?}", f.kind(*id)),
                        "bdf": f.bdf(*id).map(|b| b.to_string()),
                        "parent": f.parent(*id).map(|p| f.name(p)),
                        "link": f.link_state(*id).map(|l| if l.up { "up" } else { "down" }),
                    })
                })
                .collect()),
            "query-counters" => serde_json::from_str(&crate::counters::render(f, &self.nodes))
                .map_err(|e| generic(e.to_string())),
            "reset-counters" => {
                f.reset_counters();
                Ok(json!({}))
            }
            "trace-start" => {
                let file = PathBuf::from(str_arg(args, "file")?);
                let mut t = self.trace.lock().unwrap_or_else(|p| p.into_inner());
                crate::trace::start(f, &file).map_err(|e| generic(e.to_string()))?;
                *t = Some(file);
                Ok(json!({}))
            }
            "trace-stop" => {
                let mut t = self.trace.lock().unwrap_or_else(|p| p.into_inner());
                crate::trace::stop(f);
                Ok(json!({"file": t.take()}))
            }
            "set-acs-fault" | "clear-acs-fault" => {
                let id = self.node(args, "port")?;
                let (stuck, hidden) = if name == "clear-acs-fault" {
                    (pcie_core::AcsBits::NONE, false)
                } else {
                    let bits: Vec<AcsBit> = match args.get("stuck_on") {
                        None => Vec::new(),
                        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                            generic(format!(
                                "\"stuck_on\": a list of SV TB RR CR UF EC DT ({e})"
                            ))
                        })?,
                    };
                    let hidden = match args.get("hidden") {
                        None => false,
                        Some(v) => v
                            .as_bool()
                            .ok_or_else(|| generic("\"hidden\" must be true or false"))?,
                    };
                    (AcsBit::bits(&bits), hidden)
                };
                f.with_function(id, |func| func.inject_acs_fault(stuck, hidden))
                    .map_err(|e| generic(format!("{}: {e}", f.name(id))))?;
                self.apply(&f.refresh());
                Ok(json!({}))
            }
            "set-rc-policy" => {
                let policy = match str_arg(args, "p2p")? {
                    "forward" => RcP2pPolicy::Forward,
                    "unsupported-request" => RcP2pPolicy::UnsupportedRequest,
                    other => {
                        return Err(generic(format!(
                            "\"p2p\": '{other}' (use forward or unsupported-request)"
                        )))
                    }
                };
                f.set_rc_policy(policy);
                Ok(json!({}))
            }
            "inject-error" => {
                let id = self.node(args, "node")?;
                let severity = match str_arg(args, "severity")? {
                    "correctable" => ErrorSeverity::Correctable,
                    "nonfatal" => ErrorSeverity::NonFatal,
                    "fatal" => ErrorSeverity::Fatal,
                    other => {
                        return Err(generic(format!(
                            "\"severity\": '{other}' (use correctable, nonfatal or fatal)"
                        )))
                    }
                };
                f.report_error(id, severity)
                    .map_err(|e| generic(format!("the message was not delivered: {e}")))?;
                Ok(json!({}))
            }
            "inject-tlp-fault" => {
                let node = self.node(args, "node")?;
                let tlp: crate::topology::TlpFaultKind =
                    serde_json::from_value(args.get("tlp").cloned().unwrap_or(Value::Null))
                        .map_err(|_| generic("\"tlp\": completer-abort or poisoned"))?;
                let p2p_only = match args.get("p2p_only") {
                    None => true,
                    Some(v) => v
                        .as_bool()
                        .ok_or_else(|| generic("\"p2p_only\" must be true or false"))?,
                };
                let remaining = match args.get("count") {
                    None => None,
                    Some(v) => Some(
                        v.as_u64()
                            .ok_or_else(|| generic("\"count\" must be a number"))?,
                    ),
                };
                f.inject_fault(pcie_core::InjectedFault {
                    node,
                    fault: tlp.fault(),
                    p2p_only,
                    remaining,
                });
                Ok(json!({}))
            }
            "clear-tlp-faults" => {
                f.clear_faults();
                Ok(json!({}))
            }
            "iommu-fault" | "iommu-clear-faults" => {
                let unit = self
                    .iommu
                    .as_ref()
                    .ok_or_else(|| generic("the topology has no [iommu]"))?;
                if name == "iommu-clear-faults" {
                    unit.clear_injections();
                    return Ok(json!({}));
                }
                let fault: crate::topology::IommuFault =
                    serde_json::from_value(Value::Object(args.clone()))
                        .map_err(|e| generic(format!("iommu-fault: {e}")))?;
                let rid = match &fault.device {
                    Some(d) => Some(crate::fabric::node_rid(f, &self.nodes, d).map_err(generic)?),
                    None => None,
                };
                unit.inject(fault.injection(rid).map_err(generic)?);
                Ok(json!({"armed": unit.injections().len()}))
            }
            "link-down" | "link-up" => {
                let id = self.node(args, "port")?;
                let up = name == "link-up";
                let moved = f
                    .set_link(id, up)
                    .map_err(|e| generic(format!("{}: {e}", f.name(id))))?;
                self.apply(&moved);
                Ok(json!({"link": if up { "up" } else { "down" }}))
            }
            other => Err(Failure {
                class: "CommandNotFound",
                desc: format!("no command '{other}' (see query-commands)"),
            }),
        }
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| generic(format!("missing string argument \"{key}\"")))
}

#[cfg(test)]
mod tests;
