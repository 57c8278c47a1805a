//! The flow hash encapsulation derives the outer UDP source port from when the skb carries none
//! (RFC 7348 section 5: a hash of the inner frame's headers, so one flow keeps one underlay path
//! and different flows spread over ECMP links). Shared so tests can predict the port exactly.

/// Seed of the hash; any odd constant does.
pub const SEED: u32 = 0x5bd1_e995;

/// Folds one 32-bit word into the running hash `h`.
#[inline(always)]
pub fn mix(h: u32, word: u32) -> u32 {
    (h ^ word).wrapping_mul(0x9e37_79b1).rotate_left(13)
}

/// Final avalanche (MurmurHash3's), so every input bit reaches the high bits the port range
/// scaling uses.
#[inline(always)]
pub fn finish(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Scales a 32-bit hash into the inclusive port range `min..=max`.
#[inline(always)]
pub fn scale_to_port(hash: u32, min: u16, max: u16) -> u16 {
    let span = u64::from(max.wrapping_sub(min)) + 1;
    min.wrapping_add(((u64::from(hash) * span) >> 32) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_reaches_both_ends_of_the_range() {
        assert_eq!(scale_to_port(0, 100, 103), 100);
        assert_eq!(scale_to_port(u32::MAX, 100, 103), 103);
        assert_eq!(scale_to_port(u32::MAX, 0, u16::MAX), u16::MAX);
    }

    #[test]
    fn one_changed_input_bit_changes_the_hash() {
        let a = finish(mix(mix(SEED, 0x0a00_0001), 0x0a00_0002));
        let b = finish(mix(mix(SEED, 0x0a00_0001), 0x0a00_0003));
        assert_ne!(a, b);
        assert_ne!(a >> 16, b >> 16, "the high bits differ too");
    }
}
