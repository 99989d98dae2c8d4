//! Standard and extended capability chains.

mod common;

use pcie_core::{
    cap_id, capabilities, config_read_u32, ext_cap_id, ext_capabilities, reg, status,
    CapabilityRef, ConfigSpace, Error, ExtCapabilityRef, PciFunction,
};

#[test]
fn standard_chain_links_and_walks() {
    let mut cs = ConfigSpace::new();
    assert_eq!(cs.capabilities().count(), 0);
    let a = cs
        .add_capability(
            cap_id::POWER_MANAGEMENT,
            &[0x03, 0x00, 0, 0, 0, 0],
            &[0, 0, 3, 0, 0, 0],
        )
        .unwrap();
    let b = cs
        .add_capability(cap_id::VENDOR_SPECIFIC, &[3, 0xaa, 0xbb], &[0, 0xff, 0])
        .unwrap();
    let c = cs.add_capability(cap_id::MSIX, &[0; 10], &[0; 10]).unwrap();
    assert_eq!((a, b, c), (0x40, 0x48, 0x50));
    assert!(cs.u16_at(reg::STATUS) & status::CAPABILITIES_LIST != 0);
    assert_eq!(cs.u8_at(reg::CAPABILITIES_POINTER), 0x40);
    assert_eq!(cs.u16_at(0x40), 0x4801);
    assert_eq!(cs.u16_at(0x48), 0x5009);
    assert_eq!(cs.u16_at(0x50), 0x0011);
    let found: Vec<_> = cs.capabilities().collect();
    assert_eq!(
        found,
        [
            CapabilityRef {
                id: 1,
                offset: 0x40
            },
            CapabilityRef {
                id: 9,
                offset: 0x48
            },
            CapabilityRef {
                id: 0x11,
                offset: 0x50
            },
        ]
    );
    assert_eq!(cs.find_capability(cap_id::MSIX), Some(0x50));
    assert_eq!(cs.find_capability(cap_id::MSI), None);
    // Masks: the header is RO, the body as given.
    cs.write(0x48, &[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(cs.u32_at(0x48), 0xff03_5009);
    assert_eq!(cs.u8_at(0x4c), 0xbb);
    cs.write(0x44, &[0xff]);
    assert_eq!(cs.u8_at(0x44), 0x03);
}

#[test]
fn standard_area_fills_up() {
    let mut cs = ConfigSpace::new();
    let mut n = 0;
    loop {
        match cs.add_capability(cap_id::VENDOR_SPECIFIC, &[0; 14], &[0; 14]) {
            Ok(off) => assert_eq!(off, 0x40 + 16 * n),
            Err(e) => {
                assert_eq!(
                    e,
                    Error::CapabilitySpaceFull {
                        offset: 0x100,
                        len: 16,
                        end: 0x100
                    }
                );
                break;
            }
        }
        n += 1;
    }
    assert_eq!(n, 12);
    assert_eq!(cs.capabilities().count(), 12);
    assert_eq!(
        cs.add_capability(1, &[0; 2], &[0; 1]),
        Err(Error::MaskLength { body: 2, mask: 1 })
    );
}

#[test]
fn extended_chain_links_and_walks() {
    let mut cs = ConfigSpace::new();
    // No extended capabilities: a zero header at 0x100.
    assert_eq!(cs.u32_at(0x100), 0);
    assert_eq!(cs.ext_capabilities().count(), 0);
    let aer = cs
        .add_ext_capability(ext_cap_id::AER, 2, &[0; 0x44], &[0xff; 0x44])
        .unwrap();
    let acs = cs
        .add_ext_capability(ext_cap_id::ACS, 1, &[0x1f, 0, 0, 0], &[0, 0, 0x1f, 0])
        .unwrap();
    let vsec = cs
        .add_ext_capability(ext_cap_id::VENDOR_SPECIFIC, 1, &[1, 2, 3], &[0; 3])
        .unwrap();
    assert_eq!((aer, acs, vsec), (0x100, 0x148, 0x150));
    assert_eq!(cs.u32_at(0x100), 0x1482_0001);
    assert_eq!(cs.u32_at(0x148), 0x1501_000d);
    assert_eq!(cs.u32_at(0x150), 0x0001_000b);
    let found: Vec<_> = cs.ext_capabilities().collect();
    assert_eq!(
        found,
        [
            ExtCapabilityRef {
                id: 1,
                version: 2,
                offset: 0x100
            },
            ExtCapabilityRef {
                id: 0xd,
                version: 1,
                offset: 0x148
            },
            ExtCapabilityRef {
                id: 0xb,
                version: 1,
                offset: 0x150
            },
        ]
    );
    assert_eq!(cs.find_ext_capability(ext_cap_id::ACS), Some(0x148));
    // Extended capabilities do not touch the standard chain.
    assert_eq!(cs.capabilities().count(), 0);
    // Past the last capability, extended space reads zeros.
    let mut rest = vec![0xaa; 0x1000 - 0x158];
    cs.read(0x158, &mut rest);
    assert!(rest.iter().all(|&b| b == 0));
    // Headers are RO.
    cs.write(0x148, &[0xff; 4]);
    assert_eq!(cs.u32_at(0x148), 0x1501_000d);
    cs.write(0x14c, &[0xff; 4]);
    assert_eq!(cs.u32_at(0x14c), 0x001f_001f);
}

#[test]
fn extended_area_limits() {
    let mut cs = ConfigSpace::new();
    assert_eq!(
        cs.add_ext_capability(1, 16, &[], &[]),
        Err(Error::InvalidCapabilityVersion(16))
    );
    cs.add_ext_capability(1, 1, &[0; 0xef8], &[0; 0xef8])
        .unwrap();
    assert!(matches!(
        cs.add_ext_capability(2, 1, &[0; 4], &[0; 4]),
        Err(Error::CapabilitySpaceFull {
            offset: 0xffc,
            len: 8,
            end: 0x1000
        })
    ));
    assert_eq!(cs.add_ext_capability(2, 1, &[], &[]).unwrap(), 0xffc);
    assert_eq!(cs.ext_capabilities().count(), 2);
}

#[test]
fn looping_chains_terminate() {
    let mut cs = ConfigSpace::new();
    cs.set_u16(reg::STATUS, status::CAPABILITIES_LIST);
    cs.set_u8(reg::CAPABILITIES_POINTER, 0x40);
    cs.set_u16(0x40, 0x5001);
    cs.set_u16(0x50, 0x4005);
    assert_eq!(cs.capabilities().count(), 48);
    cs.set_u32(0x100, 0x2000_0001);
    cs.set_u32(0x200, 0x1000_0002);
    assert_eq!(cs.ext_capabilities().count(), 480);
}

#[test]
fn walks_stop_on_bad_pointers() {
    let mut cs = ConfigSpace::new();
    // Pointer set but the status bit clear: no capabilities.
    cs.set_u8(reg::CAPABILITIES_POINTER, 0x40);
    cs.set_u16(0x40, 0x0001);
    assert_eq!(cs.capabilities().count(), 0);
    cs.set_u16(reg::STATUS, status::CAPABILITIES_LIST);
    // A next pointer into the header ends the walk; low bits are ignored.
    cs.set_u16(0x40, 0x4b01);
    cs.set_u16(0x48, 0x1005);
    let ids: Vec<_> = cs.capabilities().map(|c| c.id).collect();
    assert_eq!(ids, [1, 5]);
    // Reads of an absent function are all ones: nothing found.
    assert_eq!(capabilities(|_| u32::MAX).count(), 0);
    assert_eq!(ext_capabilities(|_| u32::MAX).count(), 0);
    // An extended next pointer below 0x100 ends the walk.
    cs.set_u32(0x100, 0x0801_0001);
    assert_eq!(cs.ext_capabilities().count(), 1);
}

#[test]
fn walk_through_a_function() {
    let mut cfg = common::config(0x1234, 1);
    let pm = cfg
        .space_mut()
        .add_capability(cap_id::POWER_MANAGEMENT, &[3, 0, 0, 0, 0, 0], &[0; 6])
        .unwrap();
    let aer = cfg
        .space_mut()
        .add_ext_capability(ext_cap_id::AER, 2, &[0; 0x44], &[0; 0x44])
        .unwrap();
    let f: Box<dyn PciFunction> = Box::new(common::Dummy(cfg));
    let std: Vec<_> = capabilities(|o| config_read_u32(&*f, o))
        .map(|c| c.offset)
        .collect();
    let ext: Vec<_> = ext_capabilities(|o| config_read_u32(&*f, o))
        .map(|c| c.offset)
        .collect();
    assert_eq!((std, ext), (vec![pm], vec![aer]));
}
