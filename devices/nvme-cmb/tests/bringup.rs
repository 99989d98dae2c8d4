//! Admin bring-up driven by the Rust test driver: registers, enable,
//! Identify, features, queues, interrupts, reset and shutdown.

mod common;

use common::*;
use nvme_cmb::regs::{cc, cmb, csts, reg};
use nvme_cmb::sqe::{admin_op, Command};
use nvme_cmb::Status;

fn identify(r: &Rig, c: usize, cns: u32, nsid: u32) -> (Status, Vec<u8>) {
    let cqe = r.exec(
        c,
        0,
        Command {
            opcode: admin_op::IDENTIFY,
            nsid,
            dptr: prp(DATA, 0),
            cdw10: cns,
            ..Command::default()
        },
    );
    (cqe.status, r.peek(DATA, 4096))
}

#[test]
fn registers_after_power_on() {
    let r = Rig::new();
    let cap = r.read64(0, reg::CAP);
    assert_eq!(cap & 0xffff, 1023, "MQES");
    assert_ne!(cap & (1 << 16), 0, "CQR");
    assert_ne!(cap & (1 << 37), 0, "CSS NVM");
    assert_ne!(cap & (1 << 57), 0, "CMBS on the controller with a CMB");
    assert_eq!(r.read64(1, reg::CAP) & (1 << 57), 0, "no CMBS without one");
    assert_eq!(r.read32(0, reg::VS), 0x0001_0400);
    assert_eq!(r.read32(0, reg::CSTS), 0);
    // NVMe 1.4: CMBLOC/CMBSZ read 0 until CMBMSC.CRE.
    assert_eq!(r.read32(0, reg::CMBSZ), 0);
    r.write64(0, reg::CMBMSC, cmb::CRE);
    // 4 MiB in 1 MiB units (SZU = 2), SQS | LISTS | RDS | WDS.
    assert_eq!(r.read32(0, reg::CMBSZ), (4 << 12) | (2 << 8) | 0b11101);
    assert_eq!(r.read32(0, reg::CMBLOC), 2, "BIR 2, offset 0");
    // Read-only registers ignore writes.
    r.write32(0, reg::VS, 0);
    assert_eq!(r.read32(0, reg::VS), 0x0001_0400);
}

#[test]
fn enable_sets_ready_and_disable_clears_it() {
    let r = Rig::new();
    r.enable(0);
    r.write32(0, reg::CC, 0);
    // RDY stays until the engine has reset the controller.
    assert_eq!(r.read32(0, reg::CSTS) & csts::RDY, 1);
    r.run(0);
    assert_eq!(r.read32(0, reg::CSTS) & csts::RDY, 0);
    // A bad configuration (MPS above MPSMAX) is a fatal status, not ready.
    r.write32(0, reg::CC, cc::EN | (9 << cc::MPS_SHIFT));
    r.run(0);
    assert_eq!(r.read32(0, reg::CSTS) & (csts::RDY | csts::CFS), csts::CFS);
}

#[test]
fn identify_controller_and_namespace() {
    let r = Rig::new();
    r.enable(0);
    let (st, id) = identify(&r, 0, 1, 0);
    assert!(st.is_success(), "{st}");
    assert_eq!(&id[0..2], &0x1b36u16.to_le_bytes(), "VID");
    assert_eq!(&id[4..24], b"RIG0                ", "SN");
    assert_eq!(&id[24..28], b"rig ", "MN");
    assert_eq!(id[77], 7, "MDTS");
    assert_eq!(&id[80..84], &0x0001_0400u32.to_le_bytes(), "VER");
    assert_eq!(id[512], 0x66, "SQES");
    assert_eq!(id[513], 0x44, "CQES");
    assert_eq!(&id[516..520], &1u32.to_le_bytes(), "NN");
    let (st, ns) = identify(&r, 0, 0, 1);
    assert!(st.is_success());
    let blocks = NS_SIZE / 512;
    assert_eq!(&ns[0..8], &blocks.to_le_bytes(), "NSZE");
    assert_eq!(ns[130], 9, "LBADS: 512-byte blocks");
    let (st, list) = identify(&r, 0, 2, 0);
    assert!(st.is_success());
    assert_eq!(
        &list[0..8],
        &[1, 0, 0, 0, 0, 0, 0, 0],
        "NSID 1, then the end"
    );
    assert_eq!(identify(&r, 0, 0, 7).0, Status::INVALID_NAMESPACE);
    assert_eq!(identify(&r, 0, 0x55, 0).0, Status::INVALID_FIELD);
}

#[test]
fn features_and_queue_creation_rules() {
    let r = Rig::new();
    r.enable(0);
    let set = |fid: u32, v: u32| {
        r.exec(
            0,
            0,
            Command {
                opcode: admin_op::SET_FEATURES,
                cdw10: fid,
                cdw11: v,
                ..Command::default()
            },
        )
    };
    // Number of Queues: 8 SQs and 4 CQs asked (0-based), granted as asked.
    let cqe = set(7, 7 | (3 << 16));
    assert!(cqe.status.is_success());
    assert_eq!(cqe.dw0, 7 | (3 << 16));
    // Volatile write cache off, then read back.
    assert!(set(6, 0).status.is_success());
    let get = r.exec(
        0,
        0,
        Command {
            opcode: admin_op::GET_FEATURES,
            cdw10: 6,
            ..Command::default()
        },
    );
    assert_eq!(get.dw0, 0);
    assert_eq!(set(0x7f, 0).status, Status::INVALID_FIELD);
    assert_eq!(
        set(6 | (1 << 31), 1).status,
        Status::FEATURE_ID_NOT_SAVEABLE
    );

    let create = |op: u8, qid: u32, size: u32, cdw11: u32, base: u64| {
        r.exec(
            0,
            0,
            Command {
                opcode: op,
                dptr: prp(base, 0),
                cdw10: qid | ((size - 1) << 16),
                cdw11,
                ..Command::default()
            },
        )
        .status
    };
    let cq = admin_op::CREATE_IO_CQ;
    let sq = admin_op::CREATE_IO_SQ;
    // An SQ needs its CQ; queue 5 exceeds the 4 CQs granted.
    assert_eq!(
        create(sq, 1, 16, 1 | (1 << 16), IOSQ),
        Status::COMPLETION_QUEUE_INVALID
    );
    assert_eq!(create(cq, 5, 16, 3, IOCQ), Status::INVALID_QUEUE_IDENTIFIER);
    assert_eq!(create(cq, 1, 1, 3, IOCQ), Status::INVALID_QUEUE_SIZE);
    assert_eq!(create(cq, 1, 2000, 3, IOCQ), Status::INVALID_QUEUE_SIZE);
    assert_eq!(
        create(cq, 1, 16, 2, IOCQ),
        Status::INVALID_FIELD,
        "not contiguous"
    );
    assert_eq!(
        create(cq, 1, 16, 3 | (200 << 16), IOCQ),
        Status::INVALID_INTERRUPT_VECTOR
    );
    assert!(create(cq, 1, 16, 3 | (1 << 16), IOCQ).is_success());
    assert_eq!(
        create(cq, 1, 16, 3, IOCQ),
        Status::INVALID_QUEUE_IDENTIFIER,
        "exists"
    );
    assert!(create(sq, 1, 16, 1 | (1 << 16), IOSQ).is_success());
    // The CQ cannot go while its SQ exists.
    let delete = |op: u8, qid: u32| {
        r.exec(
            0,
            0,
            Command {
                opcode: op,
                cdw10: qid,
                ..Command::default()
            },
        )
        .status
    };
    assert_eq!(
        delete(admin_op::DELETE_IO_CQ, 1),
        Status::INVALID_QUEUE_DELETION
    );
    assert!(delete(admin_op::DELETE_IO_SQ, 1).is_success());
    assert!(delete(admin_op::DELETE_IO_CQ, 1).is_success());
    assert_eq!(
        delete(admin_op::DELETE_IO_SQ, 1),
        Status::INVALID_QUEUE_IDENTIFIER
    );
    // Number of Queues after queues were created is a sequence error.
    assert!(create(cq, 1, 16, 3, IOCQ).is_success());
    assert_eq!(set(7, 0).status, Status::COMMAND_SEQUENCE_ERROR);
    // Unknown admin opcode.
    let cqe = r.exec(
        0,
        0,
        Command {
            opcode: 0xee,
            ..Command::default()
        },
    );
    assert_eq!(cqe.status, Status::INVALID_OPCODE);
}

#[test]
fn completions_raise_their_queues_vector() {
    let r = Rig::new();
    msix_on(&r, 0, 0, 0xfee0_0000, 0x41);
    msix_on(&r, 0, 1, 0xfee0_1000, 0x42);
    r.ready(0);
    let before = r.irqs.0.lock().unwrap().len();
    assert_eq!(
        before, 2,
        "each admin completion (create CQ, SQ) raised vector 0"
    );
    assert!(r
        .irqs
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|m| *m == (0xfee0_0000, 0x41)));
    let cqe = r.exec(
        0,
        1,
        Command {
            opcode: 0x00, // Flush
            nsid: 1,
            ..Command::default()
        },
    );
    assert!(cqe.status.is_success());
    assert_eq!(cqe.sq_id, 1);
    assert_eq!(r.irqs.0.lock().unwrap().last(), Some(&(0xfee0_1000, 0x42)));
}

#[test]
fn shutdown_reports_complete_and_reset_drops_queues() {
    let r = Rig::new();
    r.ready(0);
    r.write32(0, reg::CC, r.read32(0, reg::CC) | (1 << cc::SHN_SHIFT));
    r.run(0);
    assert_eq!(
        r.read32(0, reg::CSTS) & csts::SHST_MASK,
        csts::SHST_COMPLETE
    );
    // Reset with a command in flight: it is dropped with the queues.
    r.submit(0, 1, rw(false, 0, 1, prp(DATA, 0)));
    r.write32(0, reg::CC, 0);
    r.run(0);
    assert_eq!(r.read32(0, reg::CSTS), 0);
    assert_eq!(r.reap(0, 1), None, "no completion after the reset");
    // Enabled again: the old I/O queue is gone.
    r.enable(0);
    let cqe = r.exec(
        0,
        0,
        Command {
            opcode: admin_op::DELETE_IO_SQ,
            cdw10: 1,
            ..Command::default()
        },
    );
    assert_eq!(cqe.status, Status::INVALID_QUEUE_IDENTIFIER);
}
