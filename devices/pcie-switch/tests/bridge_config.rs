//! `BridgeConfig` validation: every inconsistency is a clear error.

mod common;

use common::*;
use pcie_switch::{AcsBits, AcsConfig, BridgeConfig, Error, PciBridge};

fn rejected(config: BridgeConfig) -> Error {
    let err = PciBridge::new(config).unwrap_err();
    assert_eq!(config.validate().err().unwrap_or_else(|| err.clone()), err);
    assert!(!err.to_string().is_empty());
    err
}

fn with_acs(acs: AcsConfig) -> BridgeConfig {
    BridgeConfig {
        acs: Some(acs),
        ..root_port()
    }
}

#[test]
fn fixtures_are_valid() {
    for config in all_ports() {
        config.validate().unwrap();
        assert_eq!(PciBridge::new(config).unwrap().config(), &config);
    }
}

#[test]
fn port_level_errors() {
    let up = upstream_port();
    assert_eq!(
        rejected(BridgeConfig {
            acs: Some(FULL_ACS),
            ..up
        }),
        Error::AcsOnUpstreamPort
    );
    assert_eq!(
        rejected(BridgeConfig {
            slot: Some(1),
            ..up
        }),
        Error::SlotOnUpstreamPort
    );
    assert_eq!(
        rejected(BridgeConfig {
            slot: Some(0x2000),
            ..root_port()
        }),
        Error::SlotNumberOutOfRange(0x2000)
    );
    for width in [0u8, 3, 5, 64, 255] {
        assert_eq!(
            rejected(BridgeConfig {
                link_width: width,
                ..root_port()
            }),
            Error::InvalidLinkWidth(width)
        );
    }
    for vendor_id in [0, 0xffff] {
        let err = rejected(BridgeConfig {
            vendor_id,
            ..downstream_port()
        });
        assert!(matches!(err, Error::Core(_)), "{err}");
    }
}

#[test]
fn acs_errors() {
    let base = AcsConfig {
        capability: AcsBits::SV | AcsBits::RR,
        control: AcsBits::SV,
        stuck: AcsBits::NONE,
        egress_vector_size: 0,
        egress_vector: 0,
    };
    // Reserved capability bits cannot be expressed: AcsBits holds SV..DT only.
    assert_eq!(
        AcsBits::from_register(0x80 | AcsBits::SV.bits()),
        AcsBits::SV
    );
    assert_eq!(
        rejected(with_acs(AcsConfig {
            control: AcsBits::DT,
            ..base
        })),
        Error::AcsControlNotImplemented {
            control: AcsBits::DT.bits(),
            capability: (AcsBits::SV | AcsBits::RR).bits()
        }
    );
    assert_eq!(
        rejected(with_acs(AcsConfig {
            stuck: AcsBits::EC,
            ..base
        })),
        Error::AcsStuckNotImplemented {
            stuck: AcsBits::EC.bits(),
            capability: (AcsBits::SV | AcsBits::RR).bits()
        }
    );
    assert_eq!(
        rejected(with_acs(AcsConfig {
            egress_vector_size: 8,
            ..base
        })),
        Error::AcsEgressWithoutEc { size: 8, vector: 0 }
    );
    let ec = AcsConfig {
        capability: AcsBits::EC,
        control: AcsBits::NONE,
        egress_vector_size: 8,
        ..base
    };
    for size in [0u16, 257, 1000] {
        assert_eq!(
            rejected(with_acs(AcsConfig {
                egress_vector_size: size,
                ..ec
            })),
            Error::AcsEgressVectorSize(size)
        );
    }
    assert_eq!(
        rejected(with_acs(AcsConfig {
            egress_vector: 0x100,
            ..ec
        })),
        Error::AcsEgressVectorTooWide {
            vector: 0x100,
            size: 8
        }
    );
    // Edge cases that are fine: a full-width initial vector with 32+ bits.
    for size in [32u16, 33, 256] {
        let acs = AcsConfig {
            egress_vector_size: size,
            egress_vector: u32::MAX,
            ..ec
        };
        PciBridge::new(with_acs(acs)).unwrap();
    }
}
