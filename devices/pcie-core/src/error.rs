//! The one error type of `pcie-core`.

use crate::{Bdf, HeaderLayout, NodeId, NodeKind, PortType};

/// Everything that can go wrong while building or populating PCI functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A device number ≥ 32 or a function number ≥ 8.
    #[error("invalid BDF: device {device} (must be < 32), function {function} (must be < 8)")]
    InvalidBdf {
        /// The rejected device number.
        device: u8,
        /// The rejected function number.
        function: u8,
    },
    /// A function is already present at this address.
    #[error("a function is already present at {0}")]
    DuplicateFunction(Bdf),
    /// Vendor ID 0x0000 or 0xFFFF: the OS would read the function as absent.
    #[error("vendor ID {0:#06x} is reserved (reads as an absent function)")]
    InvalidVendorId(u16),
    /// A BAR index outside the header's BAR registers.
    #[error("BAR index {index} out of range (this header has {count} BARs)")]
    InvalidBarIndex {
        /// The rejected index.
        index: u8,
        /// How many BAR registers the header has.
        count: u8,
    },
    /// The BAR register (or, for a 64-bit BAR, its upper half) is already taken.
    #[error("BAR {0} is already declared or is the upper half of a 64-bit BAR")]
    BarInUse(u8),
    /// A 64-bit BAR needs two registers; the last one cannot start one.
    #[error("64-bit BAR {0} has no room for its upper half")]
    BarNoUpperHalf(u8),
    /// A BAR size that is not a power of two, or outside the range its kind allows.
    #[error("invalid size {size:#x} for a {kind} BAR")]
    InvalidBarSize {
        /// The rejected size in bytes.
        size: u64,
        /// The BAR kind, for the message.
        kind: &'static str,
    },
    /// A capability's writable mask is not the length of its body.
    #[error("capability mask is {mask} bytes, body is {body}")]
    MaskLength {
        /// Body length in bytes.
        body: usize,
        /// Mask length in bytes.
        mask: usize,
    },
    /// No room left in the standard (0x40..0x100) or extended (0x100..0x1000) area.
    #[error("no room for a {len}-byte capability at {offset:#x} (area ends at {end:#x})")]
    CapabilitySpaceFull {
        /// Offset the capability would have started at.
        offset: u16,
        /// Its total length, header included.
        len: usize,
        /// First offset past the area.
        end: u16,
    },
    /// An extended capability version does not fit in 4 bits.
    #[error("extended capability version {0} does not fit in 4 bits")]
    InvalidCapabilityVersion(u8),
    /// A field value out of range for the register holding it.
    #[error("{field} value {value} out of range")]
    FieldOutOfRange {
        /// Which field.
        field: &'static str,
        /// The rejected value.
        value: u64,
    },
    /// Only root ports and switch downstream ports have slots.
    #[error("a {0:?} cannot have a slot")]
    SlotNotAllowed(PortType),
    /// Hot-plug asked for on a port without a slot.
    #[error("a hot-plug capable port needs a slot")]
    HotPlugWithoutSlot,
    /// A fabric node id that this fabric did not hand out.
    #[error("no fabric node {0}")]
    UnknownNode(NodeId),
    /// Two functions at the same device/function on the same bus.
    #[error("{device:02x}.{function:x} is already taken on the bus below {parent}")]
    DuplicateNode {
        /// The bus owner: a bridge's name, or "the root bus".
        parent: String,
        /// Device number.
        device: u8,
        /// Function number.
        function: u8,
    },
    /// Only root ports and switch ports have a bus below them.
    #[error("{0} is not a bridge: nothing can sit below it")]
    NotABridge(String),
    /// A kind of node that cannot sit where it was put, e.g. a switch
    /// upstream port on the root bus or a host bridge below a port.
    #[error("a {kind:?} cannot sit below {parent}")]
    Misplaced {
        /// The rejected node's kind.
        kind: NodeKind,
        /// Where it was put: a bridge's name, or "the root bus".
        parent: String,
    },
    /// A PCIe link carries one device, device 0 (functions 0..8).
    #[error("device {device} below {parent}: a PCIe link has only device 0")]
    LinkDeviceNotZero {
        /// The root or downstream port.
        parent: String,
        /// The rejected device number.
        device: u8,
    },
    /// The function's header type does not match its node kind.
    #[error("a {kind:?} needs a {expected:?} header")]
    HeaderMismatch {
        /// The node kind asked for.
        kind: NodeKind,
        /// The header layout that kind needs.
        expected: HeaderLayout,
    },
    /// The tree would be deeper than the router supports.
    #[error("fabric deeper than {0} levels")]
    TooDeep(usize),
    /// Enumeration ran out of bus numbers: a hierarchy has at most 256 buses.
    #[error("no bus number left for the secondary bus of bridge {bridge} (at most 256 buses)")]
    TooManyBuses {
        /// The bridge that needed one, as "name (bb:dd.f)".
        bridge: String,
    },
    /// Enumeration: a bridge window or BAR does not fit its aperture.
    #[error(
        "{what} ({size:#x} bytes) does not fit the {aperture} aperture \
         ({available:#x} bytes; the root bus needs {needed:#x})"
    )]
    ApertureExhausted {
        /// The window or BAR, e.g. "the memory window of bridge rp1 (00:01.0)".
        what: String,
        /// Its size in bytes.
        size: u64,
        /// "32-bit MMIO", "64-bit MMIO" or "I/O".
        aperture: &'static str,
        /// The aperture's size in bytes.
        available: u64,
        /// What the root bus's resources of that kind need in all, with alignment.
        needed: u64,
    },
    /// Enumeration was given a malformed aperture.
    #[error("invalid {aperture} aperture: {reason}")]
    InvalidAperture {
        /// Which aperture.
        aperture: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Memory for a RAM-backed BAR could not be had: a size that is zero,
    /// not a multiple of 4 KiB, or more than the host can map.
    #[error("cannot allocate {0:#x} bytes of BAR memory (must be a non-zero multiple of 4 KiB the host can map)")]
    BarMemory(u64),
}
