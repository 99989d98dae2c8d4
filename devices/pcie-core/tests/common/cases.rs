//! A table-driven harness for the DMA router: each case builds a fresh
//! fabric, programs ACS, egress vectors and command registers through
//! config space, routes one request and checks the outcome and path.

use pcie_core::{command, AcsBits, AcsViolationKind, DmaError, RcP2pPolicy, Target};

use super::topo::Topo;

pub const BME: u16 = command::BUS_MASTER;
pub const MSE: u16 = command::MEMORY_SPACE;

/// Where a request goes.
#[derive(Clone, Copy)]
pub enum To {
    /// BAR `bar` of a node, at an offset.
    Bar(&'static str, u8, u64),
    /// A raw bus address (RAM below 1 MiB).
    Addr(u64),
}

/// What should become of it.
#[derive(Clone, Copy)]
pub enum Expect {
    /// Completes at the `To` target through this path.
    Path(&'static str),
    /// Refused.
    Err(E),
}

#[derive(Clone, Copy, Debug)]
pub enum E {
    Bme,
    Ur,
    Ca,
    Acs(&'static str, AcsViolationKind),
}

#[derive(Clone)]
pub struct Case {
    name: &'static str,
    policy: RcP2pPolicy,
    acs: Vec<(&'static str, AcsBits)>,
    egress: Vec<(&'static str, u32)>,
    clear: Vec<(&'static str, u16)>,
    from: &'static str,
    to: To,
    len: u64,
    write: bool,
    translated: bool,
    spoof: Option<&'static str>,
    expect: Expect,
}

pub fn case(name: &'static str, from: &'static str, to: To, expect: Expect) -> Case {
    Case {
        name,
        policy: RcP2pPolicy::Forward,
        acs: vec![],
        egress: vec![],
        clear: vec![],
        from,
        to,
        len: 64,
        write: true,
        translated: false,
        spoof: None,
        expect,
    }
}

impl Case {
    pub fn acs(mut self, node: &'static str, bits: AcsBits) -> Self {
        self.acs.push((node, bits));
        self
    }
    pub fn egress(mut self, node: &'static str, vector: u32) -> Self {
        self.egress.push((node, vector));
        self
    }
    pub fn clear(mut self, node: &'static str, bits: u16) -> Self {
        self.clear.push((node, bits));
        self
    }
    pub fn policy(mut self, p: RcP2pPolicy) -> Self {
        self.policy = p;
        self
    }
    pub fn read(mut self) -> Self {
        self.write = false;
        self
    }
    pub fn translated(mut self) -> Self {
        self.translated = true;
        self
    }
    pub fn spoof(mut self, as_node: &'static str) -> Self {
        self.spoof = Some(as_node);
        self
    }
    pub fn len(mut self, len: u64) -> Self {
        self.len = len;
        self
    }
}

pub fn run(build: fn(RcP2pPolicy) -> Topo, cases: &[Case]) {
    for c in cases {
        let t = build(c.policy);
        for &(n, bits) in &c.acs {
            t.set_acs(n, bits);
        }
        for &(n, v) in &c.egress {
            t.set_egress(n, v);
        }
        let addr = match c.to {
            To::Bar(n, bar, off) => t.bar(n, bar) + off,
            To::Addr(a) => a,
        };
        let mut req = t.req(c.from, addr, c.len, c.write);
        req.translated = c.translated;
        req.requester_id = c.spoof.map(|n| t.bdf(n).requester_id());
        // Disable last: the node must still be reachable to be configured.
        for &(n, bits) in &c.clear {
            t.clear_command(n, bits);
        }
        let got = t.fabric.route(&req);
        match (c.expect, got) {
            (Expect::Path(path), Ok(route)) => {
                let target = match c.to {
                    To::Bar(n, bar, offset) => Target::Bar {
                        node: t.id(n),
                        bar,
                        offset,
                    },
                    To::Addr(addr) => Target::Ram { addr },
                };
                assert_eq!(route.target, target, "{}: target", c.name);
                assert_eq!(t.path(&route), path, "{}: path", c.name);
            }
            (Expect::Err(e), Err(got)) => {
                let want = match e {
                    E::Bme => DmaError::BusMasterDisabled,
                    E::Ur => DmaError::UnsupportedRequest,
                    E::Ca => DmaError::CompleterAbort,
                    E::Acs(port, kind) => DmaError::AcsViolation {
                        port: t.id(port),
                        kind,
                    },
                };
                assert_eq!(got, want, "{}", c.name);
            }
            (Expect::Path(_), Err(e)) => panic!("{}: expected a route, got {e}", c.name),
            (Expect::Err(e), Ok(r)) => {
                panic!(
                    "{}: expected {e:?}, got {:?} via {}",
                    c.name,
                    r.target,
                    t.path(&r)
                )
            }
        }
    }
}

pub const EP2: To = To::Bar("ep2", 0, 0x1230);
pub const LOCAL: &str = "ep1^ dsp1^ dsp2v ep2v";
pub const VIA_RC: &str = "ep1^ dsp1^ usp^ rp1^ rp1v uspv dsp2v ep2v";
pub const TURN_AT_RP: &str = "ep1^ dsp1^ usp^ uspv dsp2v ep2v";
pub const TO_RAM: &str = "ep1^ dsp1^ usp^ rp1^";
/// Egress vector bits; port numbers are device number + 1, so dsp2 is
/// port 2, dsp3 port 3 and rp2 (device 2) port 3.
pub const PORT2: u32 = 1 << 2;
pub const PORT3: u32 = 1 << 3;
