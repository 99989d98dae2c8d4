//! `kind = "rnic"` endpoints: the MAC address.

use super::Endpoint;

/// The MAC of an `rnic` endpoint, the `index`-th RNIC of the VM: its
/// `mac` field, or 00:50:56:50:32:nn (VMware's OUI, which Linux's
/// vmxnet3 driver expects, then "P2" and the index).
pub fn mac(ep: &Endpoint, index: u8) -> Result<[u8; 6], String> {
    let Some(m) = &ep.mac else {
        return Ok([0x00, 0x50, 0x56, 0x50, 0x32, index]);
    };
    let m = m.get_ref();
    let bad = || format!("mac '{m}' is not six hex bytes like 00:50:56:00:00:01");
    let bytes: Vec<u8> = m
        .split(':')
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let mac: [u8; 6] = bytes.try_into().map_err(|_| bad())?;
    if mac[0] & 1 != 0 {
        return Err(format!("mac '{m}' is a multicast address"));
    }
    Ok(mac)
}
