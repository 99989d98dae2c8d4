//! Completion statuses (NVMe Base 1.4, §4.6.1.2).

use std::fmt;

/// An NVMe completion status: Status Code Type, Status Code and Do Not
/// Retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// Status Code Type (0 generic, 1 command specific, 2 media).
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Do Not Retry.
    pub dnr: bool,
}

const fn generic(sc: u8, dnr: bool) -> Status {
    Status { sct: 0, sc, dnr }
}

const fn specific(sc: u8) -> Status {
    Status {
        sct: 1,
        sc,
        dnr: true,
    }
}

impl Status {
    /// Successful Completion.
    pub const SUCCESS: Status = generic(0x00, false);
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: Status = generic(0x01, true);
    /// Invalid Field in Command.
    pub const INVALID_FIELD: Status = generic(0x02, true);
    /// Command ID Conflict.
    pub const CID_CONFLICT: Status = generic(0x03, true);
    /// Data Transfer Error.
    pub const DATA_TRANSFER_ERROR: Status = generic(0x04, false);
    /// Internal Error.
    pub const INTERNAL_ERROR: Status = generic(0x06, false);
    /// Command Abort Requested.
    pub const ABORT_REQUESTED: Status = generic(0x07, false);
    /// Command Aborted due to SQ Deletion.
    pub const ABORTED_SQ_DELETION: Status = generic(0x08, false);
    /// Invalid Namespace or Format.
    pub const INVALID_NAMESPACE: Status = generic(0x0b, true);
    /// Command Sequence Error.
    pub const COMMAND_SEQUENCE_ERROR: Status = generic(0x0c, true);
    /// Invalid SGL Segment Descriptor.
    pub const INVALID_SGL_SEGMENT_DESCRIPTOR: Status = generic(0x0d, true);
    /// Invalid Number of SGL Descriptors.
    pub const INVALID_SGL_DESCRIPTOR_COUNT: Status = generic(0x0e, true);
    /// Data SGL Length Invalid.
    pub const DATA_SGL_LENGTH_INVALID: Status = generic(0x0f, true);
    /// SGL Descriptor Type Invalid.
    pub const SGL_DESCRIPTOR_TYPE_INVALID: Status = generic(0x11, true);
    /// Invalid Use of Controller Memory Buffer.
    pub const INVALID_USE_OF_CMB: Status = generic(0x12, true);
    /// PRP Offset Invalid.
    pub const PRP_OFFSET_INVALID: Status = generic(0x13, true);
    /// SGL Offset Invalid.
    pub const SGL_OFFSET_INVALID: Status = generic(0x16, true);
    /// LBA Out of Range.
    pub const LBA_OUT_OF_RANGE: Status = generic(0x80, true);
    /// Namespace Not Ready.
    pub const NAMESPACE_NOT_READY: Status = generic(0x82, false);
    /// Completion Queue Invalid.
    pub const COMPLETION_QUEUE_INVALID: Status = specific(0x00);
    /// Invalid Queue Identifier.
    pub const INVALID_QUEUE_IDENTIFIER: Status = specific(0x01);
    /// Invalid Queue Size.
    pub const INVALID_QUEUE_SIZE: Status = specific(0x02);
    /// Abort Command Limit Exceeded.
    pub const ABORT_COMMAND_LIMIT_EXCEEDED: Status = specific(0x03);
    /// Asynchronous Event Request Limit Exceeded.
    pub const ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED: Status = specific(0x05);
    /// Invalid Firmware Slot.
    pub const INVALID_FIRMWARE_SLOT: Status = specific(0x06);
    /// Invalid Interrupt Vector.
    pub const INVALID_INTERRUPT_VECTOR: Status = specific(0x08);
    /// Invalid Log Page.
    pub const INVALID_LOG_PAGE: Status = specific(0x09);
    /// Invalid Queue Deletion.
    pub const INVALID_QUEUE_DELETION: Status = specific(0x0c);
    /// Feature Identifier Not Saveable.
    pub const FEATURE_ID_NOT_SAVEABLE: Status = specific(0x0d);
    /// Feature Not Changeable.
    pub const FEATURE_NOT_CHANGEABLE: Status = specific(0x0e);
    /// Compare Failure (media and data integrity errors).
    pub const COMPARE_FAILURE: Status = Status {
        sct: 2,
        sc: 0x85,
        dnr: true,
    };

    /// True for Successful Completion.
    pub fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// The upper half of completion dword 3 without the phase tag: bit 0
    /// (phase) 0, bits 8:1 SC, bits 11:9 SCT, bit 15 DNR.
    pub fn field(self) -> u16 {
        (u16::from(self.sc) << 1) | (u16::from(self.sct & 7) << 9) | (u16::from(self.dnr) << 15)
    }

    /// The status in `field` (as [`field`](Self::field) encodes it; the
    /// phase tag is ignored).
    pub fn from_field(field: u16) -> Status {
        Status {
            sc: (field >> 1) as u8,
            sct: ((field >> 9) & 7) as u8,
            dnr: field & (1 << 15) != 0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCT {:#x} SC {:#04x}{}",
            self.sct,
            self.sc,
            if self.dnr { " DNR" } else { "" }
        )
    }
}
