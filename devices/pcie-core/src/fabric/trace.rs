//! The optional routing trace: one record per routed request, which
//! [`TraceRecord::to_json`] turns into one JSON line.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::PoisonError;

use super::snapshot::Snapshot;
use super::{AcsViolationKind, Dir, DmaError, DmaRequest, Fabric, Hop, NodeId, Target};

/// Receives every routed request while installed with
/// [`Fabric::set_trace`]. It runs inside the router: it must not route.
pub type TraceSink = Box<dyn FnMut(&TraceRecord<'_>) + Send>;

/// One routed request and what became of it.
#[derive(Clone, Copy)]
pub struct TraceRecord<'a> {
    /// The requesting node.
    pub requester: NodeId,
    /// The requester ID the request carried.
    pub requester_id: u16,
    /// Bus address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// A write (else a read).
    pub write: bool,
    /// Address Type = Translated.
    pub translated: bool,
    /// Links crossed, up to where it completed or was refused.
    pub hops: &'a [Hop],
    /// Where it completed, or why not.
    pub outcome: Result<Target, DmaError>,
    snap: &'a Snapshot,
}

impl std::fmt::Debug for TraceRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl TraceRecord<'_> {
    /// A node's name.
    pub fn name(&self, id: NodeId) -> &str {
        &self.snap.node(id).name
    }

    /// The record as one line of JSON (no trailing newline), e.g.
    /// `{"requester":"ep1","rid":"03:00.0","op":"write","addr":"0x1000",
    /// "len":64,"at":false,"path":[{"node":"ep1","dir":"up"}],
    /// "outcome":{"ram":"0x1000"}}`.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(256);
        let rid = crate::Bdf::from_requester_id(self.requester_id);
        let op = if self.write { "write" } else { "read" };
        let _ = write!(
            s,
            "{{\"requester\":{},\"rid\":\"{rid}\",\"op\":\"{op}\",\"addr\":\"{:#x}\",\"len\":{},\"at\":{},\"path\":[",
            quote(self.name(self.requester)),
            self.addr,
            self.len,
            self.translated,
        );
        for (i, h) in self.hops.iter().enumerate() {
            let dir = if h.dir == Dir::Up { "up" } else { "down" };
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(
                s,
                "{sep}{{\"node\":{},\"dir\":\"{dir}\"}}",
                quote(self.name(h.node))
            );
        }
        s.push_str("],\"outcome\":");
        let _ = match self.outcome {
            Ok(Target::Ram { addr }) => write!(s, "{{\"ram\":\"{addr:#x}\"}}"),
            Ok(Target::Interrupt { addr }) => write!(s, "{{\"interrupt\":\"{addr:#x}\"}}"),
            Ok(Target::Bar { node, bar, offset }) => write!(
                s,
                "{{\"bar\":{{\"node\":{},\"bar\":{bar},\"offset\":\"{offset:#x}\"}}}}",
                quote(self.name(node))
            ),
            Err(DmaError::AcsViolation { port, kind }) => {
                let kind = match kind {
                    AcsViolationKind::SourceValidation => "source_validation",
                    AcsViolationKind::TranslationBlocking => "translation_blocking",
                    AcsViolationKind::EgressControl => "egress_control",
                };
                write!(
                    s,
                    "{{\"error\":\"acs_violation\",\"port\":{},\"kind\":\"{kind}\"}}",
                    quote(self.name(port))
                )
            }
            Err(e) => {
                let name = match e {
                    DmaError::BusMasterDisabled => "bus_master_disabled",
                    DmaError::CompleterAbort => "completer_abort",
                    DmaError::IommuFault => "iommu_fault",
                    DmaError::Poisoned => "poisoned",
                    _ => "unsupported_request",
                };
                write!(s, "{{\"error\":\"{name}\"}}")
            }
        };
        s.push('}');
        s
    }
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    let mut q = String::with_capacity(text.len() + 2);
    q.push('"');
    for c in text.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

impl Fabric {
    /// Traces to `out`: one JSON line per routed request (write errors ignored).
    pub fn trace_to(&self, mut out: Box<dyn Write + Send>) {
        self.set_trace(Some(Box::new(move |r: &TraceRecord<'_>| {
            let _ = writeln!(out, "{}", r.to_json());
        })));
    }

    pub(crate) fn emit_trace(
        &self,
        snap: &Snapshot,
        req: &DmaRequest,
        requester_id: u16,
        hops: &[Hop],
        outcome: Result<Target, DmaError>,
    ) {
        let mut sink = self.trace.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sink) = sink.as_mut() {
            sink(&TraceRecord {
                requester: req.requester,
                requester_id,
                addr: req.addr,
                len: req.len,
                write: req.write,
                translated: req.translated,
                hops,
                outcome,
                snap,
            });
        }
    }
}
