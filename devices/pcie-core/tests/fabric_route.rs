//! The DMA router, table-driven: bus mastering and memory decoding on the
//! way, the root complex's policy and egress control, RAM, request
//! sizes, and a two-level switch.

mod common;

use common::cases::*;
use common::topo::{standard, two_level};
use pcie_core::AcsBits;
use pcie_core::AcsViolationKind::*;
use pcie_core::RcP2pPolicy::UnsupportedRequest as RcUr;

#[test]
fn enables_windows_and_ram() {
    use Expect::{Err as X, Path as P};
    let ram = To::Addr(0x1000);
    run(
        standard,
        &[
            case("RAM below a switch", "ep1", ram, P(TO_RAM)),
            case("RAM read", "ep1", ram, P(TO_RAM)).read(),
            case("RAM below a root port", "ep4", ram, P("ep4^ rp2^")),
            case("RAM from an integrated endpoint", "rciep", ram, P("rciep^")),
            case("BME off on requester", "ep1", EP2, X(E::Bme)).clear("ep1", BME),
            case("BME off on ingress port", "ep1", EP2, X(E::Ur)).clear("dsp1", BME),
            case(
                "BME off on ingress port: turnaround",
                "ep1",
                To::Bar("ep1f1", 0, 0),
                P("ep1^ ep1f1v"),
            )
            .clear("dsp1", BME),
            case("BME off on upstream port: RAM", "ep1", ram, X(E::Ur)).clear("usp", BME),
            case("BME off on upstream port: p2p stays", "ep1", EP2, P(LOCAL)).clear("usp", BME),
            case("BME off on root port", "ep1", ram, X(E::Ur)).clear("rp1", BME),
            case("BME off on target port irrelevant", "ep1", EP2, P(LOCAL)).clear("dsp2", BME),
            case("MSE off on target", "ep1", EP2, X(E::Ur)).clear("ep2", MSE),
            case("MSE off on target's port", "ep1", EP2, X(E::Ur)).clear("dsp2", MSE),
            case(
                "MSE off on target's root port",
                "ep1",
                To::Bar("ep4", 0, 0),
                X(E::Ur),
            )
            .clear("rp2", MSE),
            case(
                "MSE off on own port: switch has no taker",
                "ep1",
                To::Bar("ep1f1", 0, 0),
                X(E::Ur),
            )
            .clear("dsp1", MSE),
            case(
                "nothing decodes (64-bit)",
                "ep1",
                To::Addr(0x50_0000_0000),
                X(E::Ur),
            ),
            case(
                "nothing decodes (32-bit)",
                "ep1",
                To::Addr(0xd000_0000),
                X(E::Ur),
            ),
            case(
                "between RAM and apertures",
                "ep4",
                To::Addr(0x8000_0000),
                X(E::Ur),
            ),
            case(
                "RC p2p forwarded",
                "ep1",
                To::Bar("ep4", 0, 0x40),
                P("ep1^ dsp1^ usp^ rp1^ rp2v ep4v"),
            ),
            case("RC p2p refused", "ep1", To::Bar("ep4", 0, 0x40), X(E::Ur)).policy(RcUr),
            case(
                "RC p2p read forwarded",
                "ep4",
                EP2,
                P("ep4^ rp2^ rp1v uspv dsp2v ep2v"),
            )
            .read(),
            case(
                "to an integrated endpoint",
                "ep4",
                To::Bar("rciep", 0, 0x10),
                P("ep4^ rp2^ rciepv"),
            ),
            case(
                "to an integrated endpoint, refused",
                "ep4",
                To::Bar("rciep", 0, 0x10),
                X(E::Ur),
            )
            .policy(RcUr),
            case(
                "RP egress control",
                "ep1",
                To::Bar("ep4", 0, 0),
                X(E::Acs("rp1", EgressControl)),
            )
            .acs("rp1", AcsBits::EC)
            .egress("rp1", PORT3),
            case(
                "RP egress control + RR",
                "ep1",
                To::Bar("ep4", 0, 0),
                P("ep1^ dsp1^ usp^ rp1^ rp2v ep4v"),
            )
            .acs("rp1", AcsBits::EC | AcsBits::RR)
            .egress("rp1", PORT3),
            case(
                "RP egress control, other port",
                "ep1",
                To::Bar("ep4", 0, 0),
                P("ep1^ dsp1^ usp^ rp1^ rp2v ep4v"),
            )
            .acs("rp1", AcsBits::EC)
            .egress("rp1", PORT2),
            case(
                "RP egress control, translated with DT",
                "ep1",
                To::Bar("ep4", 0, 0),
                P("ep1^ dsp1^ usp^ rp1^ rp2v ep4v"),
            )
            .acs("rp1", AcsBits::EC | AcsBits::DT)
            .egress("rp1", PORT3)
            .translated(),
            case(
                "past the end of a BAR",
                "ep4",
                To::Bar("rciep", 0, 0xf8),
                X(E::Ca),
            )
            .len(16),
            case(
                "own BAR is routed",
                "ep1",
                To::Bar("ep1", 0, 0),
                P("ep1^ ep1v"),
            ),
            case("empty request", "ep1", ram, X(E::Ur)).len(0),
            case("crosses 4 KiB", "ep1", To::Addr(0xff8), X(E::Ur)).len(16),
            case("a whole page", "ep1", ram, P(TO_RAM)).len(4096),
            case("longer than a page", "ep1", ram, X(E::Ur)).len(4097),
            case("RAM end", "ep1", To::Addr((1 << 20) - 16), P(TO_RAM)).len(16),
        ],
    );
}

#[test]
fn two_switch_levels() {
    use Expect::{Err as X, Path as P};
    let b2 = To::Bar("ep_b2", 0, 0x100);
    let a2 = To::Bar("ep_a2", 0, 0x100);
    let (uf, rr) = (AcsBits::UF, AcsBits::RR);
    run(
        two_level,
        &[
            case("inner switch p2p", "ep_b1", b2, P("ep_b1^ dsp_b1^ dsp_b2v ep_b2v")),
            case("across the outer switch", "ep_b1", a2, P("ep_b1^ dsp_b1^ usp_b^ dsp_a1^ dsp_a2v ep_a2v")),
            case("back into the inner switch", "ep_a2", b2, P("ep_a2^ dsp_a2^ dsp_a1v usp_bv dsp_b2v ep_b2v")),
            case("RAM", "ep_b1", To::Addr(0x3000), P("ep_b1^ dsp_b1^ usp_b^ dsp_a1^ usp_a^ rp1^")),
            case("RR inner, no UF above: outer port turns", "ep_b1", b2, P("ep_b1^ dsp_b1^ usp_b^ usp_bv dsp_b2v ep_b2v"))
                .acs("dsp_b1", rr),
            case("RR inner, UF above: RC", "ep_b1", b2, P("ep_b1^ dsp_b1^ usp_b^ dsp_a1^ usp_a^ rp1^ rp1v usp_av dsp_a1v usp_bv dsp_b2v ep_b2v"))
                .acs("dsp_b1", rr)
                .acs("dsp_a1", uf)
                .acs("rp1", uf),
            case("RR everywhere like Linux, RC refuses", "ep_b1", b2, X(E::Ur))
                .acs("dsp_b1", AcsBits::SV | rr | AcsBits::CR | uf)
                .acs("dsp_a1", AcsBits::SV | rr | AcsBits::CR | uf)
                .acs("rp1", AcsBits::SV | rr | AcsBits::CR | uf)
                .policy(RcUr),
            case("RR at outer port redirects", "ep_b1", a2, P("ep_b1^ dsp_b1^ usp_b^ dsp_a1^ usp_a^ rp1^ rp1v usp_av dsp_a2v ep_a2v"))
                .acs("dsp_a1", rr)
                .acs("rp1", uf),
            case("SV at outer port", "ep_b1", a2, X(E::Acs("dsp_a1", SourceValidation)))
                .acs("dsp_a1", AcsBits::SV)
                .spoof("ep_a2"),
            case("SV at outer port, real ID", "ep_b1", a2, P("ep_b1^ dsp_b1^ usp_b^ dsp_a1^ dsp_a2v ep_a2v"))
                .acs("dsp_a1", AcsBits::SV),
            case("EC at outer port", "ep_b1", a2, X(E::Acs("dsp_a1", EgressControl)))
                .acs("dsp_a1", AcsBits::EC)
                .egress("dsp_a1", PORT2),
            case("BME off on inner upstream port", "ep_b1", a2, X(E::Ur)).clear("usp_b", BME),
            case("BME off on inner upstream port, inner p2p", "ep_b1", b2, P("ep_b1^ dsp_b1^ dsp_b2v ep_b2v"))
                .clear("usp_b", BME),
            case("MSE off on inner upstream port", "ep_a2", b2, X(E::Ur)).clear("usp_b", MSE),
        ],
    );
}
