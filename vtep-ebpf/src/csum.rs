//! The Internet checksum of an IPv4 header.

/// The ones'-complement sum of the header's 16-bit words, folded to 16 bits. A valid header
/// sums to 0xffff; a header being built sums, with its checksum field zero, to the complement of
/// the checksum to write.
#[inline(always)]
pub fn ipv4_header_sum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for word in header.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}
