//! Every counter the datapath keeps, read before and after a run.

use crate::fixture::SLOT;
use vtep::datapath::loader::Datapath;
use vtep_common::{drop::DropReason, maps::VniStats};

/// Drops by reason and the VNI stats slot, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub drops: [u64; DropReason::COUNT as usize],
    pub stats: VniStats,
}

impl Counters {
    pub fn read(dp: &mut Datapath) -> Self {
        let mut drops = [0u64; DropReason::COUNT as usize];
        let map = dp.drops().expect("DROPS");
        for reason in DropReason::ALL {
            drops[reason as usize] = map
                .get(&(reason as u32), 0)
                .expect("DROPS entry")
                .iter()
                .sum();
        }
        let mut stats = VniStats::default();
        for s in dp
            .vni_stats()
            .expect("VNI_STATS")
            .get(&SLOT, 0)
            .expect("VNI_STATS entry")
            .iter()
        {
            stats.accumulate(s);
        }
        Self { drops, stats }
    }

    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// The counters after `self` plus one drop of `reason`.
    pub fn with_drop(mut self, reason: DropReason) -> Self {
        self.drops[reason as usize] += 1;
        self
    }

    /// Asserts that `self` counts one packet of `len` bytes more than `before` in the packet
    /// and byte counters `counter` picks (e.g. decap_packets and decap_bytes), `what` by name,
    /// and not one drop more.
    #[track_caller]
    pub fn assert_one_packet_more(
        &self,
        before: &Self,
        counter: impl Fn(&VniStats) -> (u64, u64),
        len: usize,
        what: &str,
    ) {
        let ((packets, bytes), (packets_before, bytes_before)) =
            (counter(&self.stats), counter(&before.stats));
        assert_eq!(packets, packets_before + 1, "{what} packets");
        assert_eq!(
            bytes,
            bytes_before + len as u64,
            "{what} bytes count the frame"
        );
        assert_eq!(self.drops, before.drops, "nothing dropped");
    }

    /// Drops under every reason together.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Every per-VNI traffic counter together: some moved if anything was sent, delivered,
    /// flooded or answered.
    pub fn total_traffic(&self) -> u64 {
        self.stats.values().iter().sum()
    }

    /// The names of the drop reasons that differ from `before`.
    pub fn moved_drops(&self, before: &Self) -> Vec<&'static str> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drop_count(**r) != before.drop_count(**r))
            .map(|r| r.name())
            .collect()
    }
}
