//! The DMA router, table-driven: switch-local peer-to-peer under every
//! ACS control (DESIGN.md section 8).

mod common;

use common::cases::*;
use common::topo::standard;
use pcie_core::AcsBits;
use pcie_core::AcsViolationKind::*;
use pcie_core::RcP2pPolicy::UnsupportedRequest as RcUr;

#[test]
fn switch_local_peer_to_peer_and_acs() {
    use Expect::{Err as X, Path as P};
    let uf = AcsBits::UF;
    let rr = AcsBits::RR;
    run(
        standard,
        &[
            case("p2p, ACS off: stays in the switch", "ep1", EP2, P(LOCAL)),
            case("p2p read", "ep1", EP2, P(LOCAL)).read(),
            case(
                "p2p to BAR2 via memory windows",
                "ep1",
                To::Bar("ep2", 2, 8),
                P(LOCAL),
            ),
            case("RR, UF at RP: RC forwards", "ep1", EP2, P(VIA_RC))
                .acs("dsp1", rr)
                .acs("rp1", uf),
            case("RR, UF at RP: RC refuses", "ep1", EP2, X(E::Ur))
                .acs("dsp1", rr)
                .acs("rp1", uf)
                .policy(RcUr),
            case("RR, no UF at RP: RP turns it", "ep1", EP2, P(TURN_AT_RP)).acs("dsp1", rr),
            case("RR at RP only: not p2p at RP", "ep1", EP2, P(LOCAL)).acs("rp1", rr),
            case(
                "same link, no UF",
                "ep1",
                To::Bar("ep1f1", 0, 0),
                P("ep1^ ep1f1v"),
            ),
            case(
                "UF at dsp1, RP turns",
                "ep1",
                To::Bar("ep1f1", 0, 0),
                P("ep1^ dsp1^ usp^ uspv dsp1v ep1f1v"),
            )
            .acs("dsp1", uf),
            case(
                "UF at dsp1 and RP: RC",
                "ep1",
                To::Bar("ep1f1", 0, 0),
                P("ep1^ dsp1^ usp^ rp1^ rp1v uspv dsp1v ep1f1v"),
            )
            .acs("dsp1", uf)
            .acs("rp1", uf),
            case("UF, RC refuses", "ep1", To::Bar("ep1f1", 0, 0), X(E::Ur))
                .acs("dsp1", uf)
                .acs("rp1", uf)
                .policy(RcUr),
            case(
                "EC blocks dsp2",
                "ep1",
                EP2,
                X(E::Acs("dsp1", EgressControl)),
            )
            .acs("dsp1", AcsBits::EC)
            .egress("dsp1", PORT2),
            case("EC blocks dsp3 only", "ep1", EP2, P(LOCAL))
                .acs("dsp1", AcsBits::EC)
                .egress("dsp1", PORT3),
            case("EC vector without EC enabled", "ep1", EP2, P(LOCAL)).egress("dsp1", PORT2),
            case("EC + RR redirects", "ep1", EP2, P(VIA_RC))
                .acs("dsp1", AcsBits::EC | rr)
                .egress("dsp1", PORT2)
                .acs("rp1", uf),
            case("EC + RR, RC refuses", "ep1", EP2, X(E::Ur))
                .acs("dsp1", AcsBits::EC | rr)
                .egress("dsp1", PORT2)
                .acs("rp1", uf)
                .policy(RcUr),
            case("SV, real ID", "ep1", EP2, P(LOCAL)).acs("dsp1", AcsBits::SV),
            case(
                "SV catches spoofed ID",
                "ep1",
                EP2,
                X(E::Acs("dsp1", SourceValidation)),
            )
            .acs("dsp1", AcsBits::SV)
            .spoof("ep4"),
            case(
                "SV, spoof of a sibling's ID",
                "ep1",
                EP2,
                X(E::Acs("dsp1", SourceValidation)),
            )
            .acs("dsp1", AcsBits::SV)
            .spoof("ep3"),
            case(
                "SV at RP catches spoof",
                "ep1",
                To::Addr(0x1000),
                X(E::Acs("rp1", SourceValidation)),
            )
            .acs("rp1", AcsBits::SV)
            .spoof("ep4"),
            case(
                "spoof without SV passes",
                "ep1",
                To::Addr(0x1000),
                P(TO_RAM),
            )
            .spoof("ep4"),
            case(
                "TB blocks translated",
                "ep1",
                EP2,
                X(E::Acs("dsp1", TranslationBlocking)),
            )
            .acs("dsp1", AcsBits::TB)
            .translated(),
            case("TB lets untranslated pass", "ep1", EP2, P(LOCAL)).acs("dsp1", AcsBits::TB),
            case(
                "TB at RP, to RAM",
                "ep1",
                To::Addr(0x2000),
                X(E::Acs("rp1", TranslationBlocking)),
            )
            .acs("rp1", AcsBits::TB)
            .translated(),
            case("DT + RR, translated: direct", "ep1", EP2, P(LOCAL))
                .acs("dsp1", AcsBits::DT | rr)
                .acs("rp1", uf)
                .translated(),
            case("DT + RR, untranslated: redirected", "ep1", EP2, P(VIA_RC))
                .acs("dsp1", AcsBits::DT | rr)
                .acs("rp1", uf),
            case("DT overrides EC block", "ep1", EP2, P(LOCAL))
                .acs("dsp1", AcsBits::DT | AcsBits::EC)
                .egress("dsp1", PORT2)
                .translated(),
            case("RR alone, translated: redirected", "ep1", EP2, P(VIA_RC))
                .acs("dsp1", rr)
                .acs("rp1", uf)
                .translated(),
        ],
    );
}
