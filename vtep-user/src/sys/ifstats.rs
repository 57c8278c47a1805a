//! Interface drop counters in another network namespace, from `/proc/thread-self/net/dev`:
//! that file shows the namespace of the thread that reads it, so a short-lived thread enters
//! the namespace and reads it (sysfs would show the namespace it was mounted in instead).

use std::{collections::BTreeMap, fs::File, os::fd::AsFd as _};

use anyhow::{Context as _, Result, anyhow};
use nix::sched::{CloneFlags, setns};

/// Packets an interface dropped, receiving and sending, as the kernel counts them (`ip -s link`
/// shows the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub rx: u64,
    pub tx: u64,
}

/// The drop counters of every interface in the namespace open as `netns`, by name. Fails when
/// the namespace cannot be entered or the file read.
pub fn dropped_in(netns: File) -> Result<BTreeMap<String, Dropped>> {
    std::thread::spawn(move || -> Result<BTreeMap<String, Dropped>> {
        setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
            .context("entering the instance's network namespace")?;
        let text = std::fs::read_to_string("/proc/thread-self/net/dev")
            .context("reading /proc/thread-self/net/dev")?;
        Ok(parse(&text))
    })
    .join()
    .map_err(|_| anyhow!("netns thread panicked"))?
}

/// The drop counters of `/proc/net/dev`'s text: after two header lines, `NAME: ` then 8
/// receive counters (the 4th: drop) and 8 transmit counters (the 4th: drop). Lines that do not
/// parse are left out.
fn parse(text: &str) -> BTreeMap<String, Dropped> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let n: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if n.len() >= 16 {
            out.insert(
                name.trim().to_string(),
                Dropped {
                    rx: n[3],
                    tx: n[8 + 3],
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_read_by_interface_name() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n\
vgso1e93db35b:    1388       1    0  544    0     0          0         0        0       0    0    0    0     0       0          0\n\
vgso1e93db35o:       0       0    0    0    0     0          0         0     1388       1    0  543    0     0       0          0\n";
        let got = parse(text);
        assert_eq!(got["lo"], Dropped::default());
        assert_eq!(got["vgso1e93db35b"], Dropped { rx: 544, tx: 0 });
        assert_eq!(got["vgso1e93db35o"], Dropped { rx: 0, tx: 543 });
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn this_namespace_has_a_loopback() {
        let ns = File::open("/proc/self/ns/net").unwrap();
        assert!(dropped_in(ns).unwrap().contains_key("lo"));
    }
}
