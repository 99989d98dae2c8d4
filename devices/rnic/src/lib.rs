//! RDMA NIC: vmxnet3 function 0 and PVRDMA function 1 (a later issue).
