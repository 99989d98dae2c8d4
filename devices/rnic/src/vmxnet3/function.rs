//! [`Vmxnet3`]: the function the fabric holds (config space, BAR 0 and
//! BAR 1), and how it is built with its [`Vmxnet3Engine`].

use std::sync::Arc;

use pcie_core::{
    add_msi, BarRegion, ConfigEffects, DmaHandle, Doorbell, LinkSpeed, Notifier, PciFunction,
    ResetKind, Type0Config,
};

use super::engine::Vmxnet3Engine;
use super::regs::{
    cmd, pt, vd, BAR_SIZE, CONF_INTR_MSI_AUTO, DEVICE_ID, LINK_UP_10G, MAX_QUEUES, REVISION_ID,
    VECTORS,
};
use super::state::{Core, Shared};
use crate::wire::Wire;
use crate::Error;

/// How a vmxnet3 function is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vmxnet3Config {
    /// Its permanent MAC address.
    pub mac: [u8; 6],
    /// Set the multi-function bit (a PVRDMA function follows at function 1).
    pub multifunction: bool,
    /// Link speed.
    pub link_speed: LinkSpeed,
    /// Link width in lanes.
    pub link_width: u8,
}

impl Default for Vmxnet3Config {
    /// 00:50:56:00:00:01 (VMware's OUI), single function, 8 GT/s x4.
    fn default() -> Self {
        Vmxnet3Config {
            mac: [0x00, 0x50, 0x56, 0x00, 0x00, 0x01],
            multifunction: false,
            link_speed: LinkSpeed::Gt8,
            link_width: 4,
        }
    }
}

/// The config space: Type 0 header (Ethernet controller), BAR 0 and 1
/// (4 KiB, 32-bit), Power Management, MSI (one vector) and PCI Express.
fn build_config(cfg: &Vmxnet3Config) -> Result<(Type0Config, u16), Error> {
    let mut config = crate::config::vmware_function(
        DEVICE_ID,
        REVISION_ID,
        (0x02, 0x00),
        cfg.multifunction,
        &[BAR_SIZE, BAR_SIZE],
    )?;
    let msi = add_msi(config.space_mut())?;
    crate::config::add_pcie(config.space_mut(), cfg.link_speed, cfg.link_width)?;
    Ok((config, msi))
}

/// A vmxnet3 Ethernet function (revision 1, UPT 1): see the crate
/// documentation. It never performs a DMA: commands and doorbells are
/// latched for the [`Vmxnet3Engine`].
pub struct Vmxnet3 {
    shared: Arc<Shared>,
    notify: Arc<dyn Notifier>,
}

impl std::fmt::Debug for Vmxnet3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vmxnet3").finish_non_exhaustive()
    }
}

impl Vmxnet3 {
    /// A function in its power-on state and its engine, attached to
    /// `wire`. The engine reaches memory through `dma` and runs on a
    /// thread of its own, woken by `notify` (for register writes and for
    /// frames arriving on the wire) and by the TXPROD doorbells.
    pub fn new(
        cfg: &Vmxnet3Config,
        dma: DmaHandle,
        notify: Arc<dyn Notifier>,
        wire: &Arc<Wire>,
    ) -> Result<(Self, Vmxnet3Engine), Error> {
        let (config, msi) = build_config(cfg)?;
        let core = Core {
            power_on: config.clone(),
            config,
            msi,
            mac: cfg.mac,
            perm_mac: cfg.mac,
            dsa: 0,
            cmd_result: 0,
            masked: [true; VECTORS],
            pending: [false; VECTORS],
            auto_mask: false,
            prod: [[0; MAX_QUEUES]; 3],
            activate: None,
            kicked: false,
            due: false,
            active: false,
            epoch: 0,
            busy: false,
        };
        let shared = Arc::new(Shared::new(core));
        let port = wire.attach(notify.clone());
        let engine = Vmxnet3Engine::new(shared.clone(), dma, port);
        Ok((Vmxnet3 { shared, notify }, engine))
    }

    /// The station address the driver set (MACL/MACH).
    pub fn mac(&self) -> [u8; 6] {
        self.shared.lock().mac
    }

    fn command(&self, c: u32) {
        let mut core = self.shared.lock();
        core.cmd_result = match c {
            cmd::ACTIVATE_DEV => {
                if core.dsa == 0 {
                    1
                } else {
                    // Queues from an earlier activation are dropped.
                    core.stop();
                    core.activate = Some(core.dsa);
                    core.active = true;
                    drop(core);
                    self.notify.notify();
                    return self.set_result(0);
                }
            }
            cmd::QUIESCE_DEV | cmd::RESET_DEV => {
                self.shared.stop_and_wait(core);
                return self.set_result(0);
            }
            cmd::GET_LINK => LINK_UP_10G,
            cmd::GET_CONF_INTR => CONF_INTR_MSI_AUTO,
            // Every frame is delivered (the stack drops what is not its
            // own), so the filters need not be read; nothing else a v1
            // driver issues needs an answer.
            _ => 0,
        };
    }

    fn set_result(&self, r: u32) {
        self.shared.lock().cmd_result = r;
    }

    fn reg_read(&self, bar: u8, offset: u64) -> u32 {
        let core = self.shared.lock();
        let slot = |base: u64| {
            let i = offset.checked_sub(base)? / pt::STRIDE;
            (offset.is_multiple_of(pt::STRIDE) && i < MAX_QUEUES as u64).then_some(i as usize)
        };
        match (bar, offset) {
            (0, o) if o < pt::STRIDE * VECTORS as u64 => {
                u32::from(core.masked[(o / pt::STRIDE) as usize])
            }
            (0, _) => [pt::TXPROD, pt::RXPROD, pt::RXPROD2]
                .iter()
                .enumerate()
                .find_map(|(k, &b)| slot(b).map(|i| core.prod[k][i]))
                .unwrap_or(0),
            (1, vd::VRRS) | (1, vd::UVRS) => 1,
            (1, vd::DSAL) => core.dsa as u32,
            (1, vd::DSAH) => (core.dsa >> 32) as u32,
            (1, vd::CMD) => core.cmd_result,
            (1, vd::MACL) => {
                u32::from_le_bytes([core.mac[0], core.mac[1], core.mac[2], core.mac[3]])
            }
            (1, vd::MACH) => u32::from(core.mac[4]) | u32::from(core.mac[5]) << 8,
            _ => 0,
        }
    }

    fn reg_write(&self, bar: u8, offset: u64, v: u32) {
        match (bar, offset) {
            (0, o) if o < pt::STRIDE * VECTORS as u64 && o.is_multiple_of(pt::STRIDE) => {
                self.imr_write((o / pt::STRIDE) as usize, v);
            }
            (0, o) if o.is_multiple_of(pt::STRIDE) && o >= pt::TXPROD => {
                for (k, base) in [pt::TXPROD, pt::RXPROD, pt::RXPROD2]
                    .into_iter()
                    .enumerate()
                {
                    let i = o.wrapping_sub(base) / pt::STRIDE;
                    if o >= base && i < MAX_QUEUES as u64 {
                        self.shared.lock().prod[k][i as usize] = v;
                        if k == 0 {
                            self.kick();
                        }
                    }
                }
            }
            (1, vd::DSAL) => {
                let mut c = self.shared.lock();
                c.dsa = (c.dsa & !0xffff_ffff) | u64::from(v);
            }
            (1, vd::DSAH) => {
                let mut c = self.shared.lock();
                c.dsa = (c.dsa & 0xffff_ffff) | u64::from(v) << 32;
            }
            (1, vd::CMD) => self.command(v),
            (1, vd::MACL) => self.shared.lock().mac[..4].copy_from_slice(&v.to_le_bytes()),
            (1, vd::MACH) => self.shared.lock().mac[4..].copy_from_slice(&v.to_le_bytes()[..2]),
            // VRRS/UVRS: the driver writes back revision 1, the only one.
            // ECR: this device raises no events, so there is nothing to
            // acknowledge.
            _ => {}
        }
    }

    fn imr_write(&self, v: usize, value: u32) {
        let mut core = self.shared.lock();
        core.masked[v] = value & 1 != 0;
        if !core.masked[v] && core.pending[v] {
            core.pending[v] = false;
            core.due = true;
            drop(core);
            self.notify.notify();
        }
    }

    fn kick(&self) {
        let mut core = self.shared.lock();
        if core.active {
            core.kicked = true;
            drop(core);
            self.notify.notify();
        }
    }
}

/// The dword `data` covers at `offset`, when it is one aligned dword.
fn aligned(offset: u64, len: usize) -> bool {
    len == 4 && offset.is_multiple_of(4) && offset < BAR_SIZE
}

impl PciFunction for Vmxnet3 {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.shared.lock().config.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        self.shared.lock().config.write(offset, data)
    }

    /// BAR 0: IMR and the producer registers read back; BAR 1: the
    /// version, shared-area, command-result and MAC registers. Reads that
    /// are not one aligned dword, and unimplemented registers, read 0.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        if !aligned(offset, data.len()) {
            data.fill(0);
            return;
        }
        data.copy_from_slice(&self.reg_read(bar, offset).to_le_bytes());
    }

    /// Register writes (one aligned dword; anything else is dropped).
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if let (true, Ok(v)) = (aligned(offset, data.len()), <[u8; 4]>::try_from(data)) {
            self.reg_write(bar, offset, u32::from_le_bytes(v));
        }
    }

    /// Back to power-on: config space, registers, the MAC; the engine
    /// stops (waiting for its batch, as QUIESCE_DEV does).
    fn reset(&mut self, _kind: ResetKind) {
        let mut core = self.shared.lock();
        core.config = core.power_on.clone();
        core.mac = core.perm_mac;
        core.dsa = 0;
        core.cmd_result = 0;
        core.auto_mask = false;
        core.prod = [[0; MAX_QUEUES]; 3];
        core.due = false;
        self.shared.stop_and_wait(core);
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.shared.lock().config.bar_regions()
    }

    /// The Tx producer registers: the device walks the rings by their
    /// generation bits, so the value written is not needed.
    fn doorbells(&self) -> Vec<Doorbell> {
        (0..MAX_QUEUES as u64)
            .map(|q| Doorbell {
                bar: 0,
                offset: pt::TXPROD + pt::STRIDE * q,
                eventfd: true,
            })
            .collect()
    }
}
