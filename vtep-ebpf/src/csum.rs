//! The Internet checksum (RFC 1071) of an IPv4 header and of an ICMPv6 message.

/// The ones'-complement sum of the header's 16-bit words, folded to 16 bits. A valid header
/// sums to 0xffff; a header being built sums, with its checksum field zero, to the complement of
/// the checksum to write.
#[inline(always)]
pub fn ipv4_header_sum(header: &[u8]) -> u16 {
    fold(words(header))
}

/// The sum of an ICMPv6 message (`message`, its checksum field zero) with the IPv6 pseudo
/// header of `addrs` (source then destination address, 32 bytes): the complement is the
/// checksum to write.
#[inline(always)]
pub fn icmpv6_sum(addrs: &[u8], message: &[u8]) -> u16 {
    const IPPROTO_ICMPV6: u32 = 58;
    fold(words(addrs) + words(message) + message.len() as u32 + IPPROTO_ICMPV6)
}

#[inline(always)]
fn words(bytes: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    for word in bytes.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    sum
}

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}
