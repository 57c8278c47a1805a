//! The datapath's debug log (`vtep up --trace-datapath`): the load-time switches the programs
//! read, and the shape of the drop lines userspace renders (the datapath logs a drop reason and
//! a hook as numbers; userspace prints their names).
//!
//! The programs log through aya-log (`aya-log-ebpf` writes records into the `AYA_LOGS` ring
//! buffer, `aya-log` reads them). Only the programs built for it (`…_trace`, which the loader
//! loads for `--trace-datapath`) have log calls, each behind the read-only globals below, which
//! the loader sets before the programs are loaded (the verifier folds them as constants).

/// The read-only global that turns the log on: non-zero, on.
pub const GLOBAL_TRACE: &str = "TRACE";
/// The read-only global that restricts the log to one VNI: 0, every VNI.
pub const GLOBAL_TRACE_VNI: &str = "TRACE_VNI";
/// The ring buffer aya-log's records go through (the name `aya-log` looks for).
pub const MAP_TRACE: &str = "AYA_LOGS";
/// `AYA_LOGS`'s size while tracing is off: one page, the smallest ring buffer (the map exists in
/// every load, but no record is ever written then). With tracing on it keeps the size the object
/// gives it (128 KiB).
pub const TRACE_OFF_BYTES: u32 = 4096;

/// The word a drop line starts with: `drop <reason> <hook> vni <vni>`, the reason a
/// `DropReason` and the hook a `HOOK_*` as numbers. VNI 0: not known yet when the packet was
/// dropped.
pub const DROP_WORD: &str = "drop";
