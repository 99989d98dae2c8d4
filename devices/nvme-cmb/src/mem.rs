//! How the controller reaches bus addresses.

/// Why a bus-master access failed; the command then completes with Data
/// Transfer Error (or, for a PRP or SGL list fetch, the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemError;

/// The controller's view of memory: bus addresses, as a PCIe function
/// issues them. In a VM this is the fabric router (RAM, any BAR, a peer's
/// CMB), except for addresses inside the controller's own CMB, which it
/// reads and writes internally, as real controllers do.
pub trait BusMemory {
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Writes `buf` at `addr`.
    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), MemError>;
}
