//! A Type 0 endpoint for fabric tests: memory BARs backed by buffers the
//! test keeps a handle on, and a doorbell that makes the endpoint DMA.

use std::sync::{Arc, Mutex};

use pcie_core::{
    BarKind, BarRegion, ClassCode, CommonHeader, ConfigEffects, DmaError, DmaHandle, InterruptPin,
    PciFunction, ResetKind, Type0Config, Type0Header,
};

/// BAR 0 of a standard test endpoint: 64-bit prefetchable, 1 MiB.
pub const BAR0: (u8, BarKind, u64) = (0, BarKind::Memory64 { prefetchable: true }, 1 << 20);
/// BAR 2 of a standard test endpoint: 32-bit, 16 KiB, with the doorbell at 0.
pub const BAR2: (u8, BarKind, u64) = (
    2,
    BarKind::Memory32 {
        prefetchable: false,
    },
    16 << 10,
);

/// What the test sees of an endpoint once the fabric owns it.
#[derive(Default)]
pub struct EpShared {
    /// BAR contents, by BAR index.
    pub bars: [Mutex<Vec<u8>>; 6],
    /// The handle the doorbell DMAs through.
    pub dma: Mutex<Option<DmaHandle>>,
    /// What the doorbell DMAs; [`DOORBELL_DATA`] while empty.
    pub payload: Mutex<Vec<u8>>,
    /// Outcome of each doorbell DMA.
    pub doorbells: Mutex<Vec<Result<(), DmaError>>>,
}

impl EpShared {
    /// `len` bytes of BAR `bar` at `offset`.
    pub fn peek(&self, bar: u8, offset: usize, len: usize) -> Vec<u8> {
        self.bars[bar as usize].lock().unwrap()[offset..offset + len].to_vec()
    }
}

/// What the doorbell writes to the address it is given, by default.
pub const DOORBELL_DATA: [u8; 4] = [0xd0, 0x0b, 0xe1, 0x11];

/// A Type 0 function with backed memory BARs (a fake for fabric tests;
/// the real test endpoint is `p2pvm_testdev::TestEndpoint`). Its doorbell
/// DMAs inside the BAR write, under its own lock, which real devices must
/// not do: it exists to test the fabric's re-entry guard.
pub struct FakeEndpoint {
    header: Type0Header,
    bars: Vec<(u8, BarKind, u64)>,
    cfg: Type0Config,
    shared: Arc<EpShared>,
}

impl FakeEndpoint {
    /// An endpoint with `bars` (index, kind, size); `multifunction` sets
    /// the header bit a function 0 needs when more functions follow.
    pub fn new(bars: &[(u8, BarKind, u64)], multifunction: bool) -> (Box<Self>, Arc<EpShared>) {
        let header = Type0Header {
            common: CommonHeader {
                vendor_id: 0x1234,
                device_id: 0x5678,
                revision_id: 1,
                class_code: ClassCode::new(0x01, 0x08, 0x02),
                multifunction,
                interrupt_pin: InterruptPin::IntA,
            },
            subsystem_vendor_id: 0x1234,
            subsystem_id: 1,
        };
        let shared = Arc::new(EpShared::default());
        for &(i, _, size) in bars {
            *shared.bars[i as usize].lock().unwrap() = vec![0; size as usize];
        }
        let cfg = config(&header, bars);
        let ep = FakeEndpoint {
            header,
            bars: bars.to_vec(),
            cfg,
            shared: shared.clone(),
        };
        (Box::new(ep), shared)
    }

    /// The standard endpoint: [`BAR0`] and [`BAR2`].
    pub fn standard(multifunction: bool) -> (Box<Self>, Arc<EpShared>) {
        Self::new(&[BAR0, BAR2], multifunction)
    }

    fn ring(&self, data: &[u8]) {
        let mut addr = [0; 8];
        let n = data.len().min(8);
        addr[..n].copy_from_slice(&data[..n]);
        let dma = self.shared.dma.lock().unwrap().clone();
        let mut payload = self.shared.payload.lock().unwrap().clone();
        if payload.is_empty() {
            payload = DOORBELL_DATA.to_vec();
        }
        let result = match dma {
            Some(dma) => dma.write(u64::from_le_bytes(addr), &payload),
            None => Err(DmaError::BusMasterDisabled),
        };
        self.shared.doorbells.lock().unwrap().push(result);
    }
}

fn config(header: &Type0Header, bars: &[(u8, BarKind, u64)]) -> Type0Config {
    let mut cfg = Type0Config::new(header).unwrap();
    for &(i, kind, size) in bars {
        cfg.add_bar(i, kind, size).unwrap();
    }
    cfg
}

impl PciFunction for FakeEndpoint {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.cfg.read(offset, data)
    }

    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        self.cfg.write(offset, data)
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        let mem = self.shared.bars[bar as usize].lock().unwrap();
        let at = offset as usize;
        data.copy_from_slice(&mem[at..at + data.len()]);
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar == 2 && offset == 0 {
            return self.ring(data);
        }
        let mut mem = self.shared.bars[bar as usize].lock().unwrap();
        let at = offset as usize;
        mem[at..at + data.len()].copy_from_slice(data);
    }

    fn reset(&mut self, _kind: ResetKind) {
        self.cfg = config(&self.header, &self.bars);
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.cfg.bar_regions()
    }
}
