//! Namespace tests of the commands that read and change a running instance: `vtep fdb add`,
//! `replace` and `del` (issue 4: change the FDB without restarting; `fdb_traffic`,
//! `fdb_changes`), the remote VTEPs they name (`remotes`: resolved while named, the allow-list),
//! `vtep vni show` (`vni`), `vtep check` (`check`), port names and `ip netns exec` across
//! namespaces (`namespaces`), what the CLI tells an operator who gets something wrong
//! (`messages`), and the datapath's debug log of `vtep up --trace-datapath` (`trace`).
//!
//! Like the topology tests, every test builds its own hosts with a
//! [`Lab`](vtep_tests::lab::Lab) (unique name prefix, everything removed on drop) and runs the
//! real `vtep` binary.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test cli -- --test-threads=2`.

mod check;
mod drops;
mod fdb_changes;
mod fdb_traffic;
mod messages;
mod namespaces;
mod output;
mod remotes;
mod service;
mod support;
mod trace;
mod vni;

use vtep_tests::configs;

const ADDR_A: &str = "198.18.0.1";
const ADDR_B: &str = "198.18.0.2";
const VNI: u32 = 100;

const MAC_A1: &str = "02:00:00:00:0a:01";
const MAC_B1: &str = "02:00:00:00:0b:01";

fn header(name: &str, top_extra: &str) -> String {
    configs::header(name, top_extra, "")
}
