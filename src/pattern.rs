//! The fixture's content: a pure function of (seed, offset).
//!
//! Byte `o` of a file with seed `s` is byte `o % 8` (little-endian) of `word(s, o / 8)`, where `word` is the
//! splitmix64 output for that position. Any range can be generated or checked on its own, in parallel and without
//! reading the file back, and the stream is incompressible.

/// Version of this generator, recorded in the fixture's sidecar: a file made by another version is remade.
pub const GENERATOR_VERSION: u32 = 1;

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 8-byte word at `word_index` of the stream for `seed`.
#[inline(always)]
pub fn word(seed: u64, word_index: u64) -> u64 {
    let mut z = seed.wrapping_add(word_index.wrapping_add(1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the content found at `offset` of a file with `seed`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = 0usize;
    let mut off = offset;
    // Unaligned head.
    while pos < buf.len() && off % 8 != 0 {
        buf[pos] = word(seed, off / 8).to_le_bytes()[(off % 8) as usize];
        pos += 1;
        off += 1;
    }
    let body = &mut buf[pos..];
    let whole = body.len() / 8;
    let first = off / 8;
    for (i, out) in body[..whole * 8].chunks_exact_mut(8).enumerate() {
        out.copy_from_slice(&word(seed, first + i as u64).to_le_bytes());
    }
    let tail_start = whole * 8;
    let tail_off = off + tail_start as u64;
    for (i, b) in body[tail_start..].iter_mut().enumerate() {
        let o = tail_off + i as u64;
        *b = word(seed, o / 8).to_le_bytes()[(o % 8) as usize];
    }
}

/// Checks `data` against the content at `offset`; returns the absolute offset of the first wrong byte.
pub fn first_mismatch(seed: u64, offset: u64, data: &[u8]) -> Option<u64> {
    let mut pos = 0usize;
    let mut off = offset;
    while pos < data.len() && off % 8 != 0 {
        if data[pos] != word(seed, off / 8).to_le_bytes()[(off % 8) as usize] {
            return Some(off);
        }
        pos += 1;
        off += 1;
    }
    let body = &data[pos..];
    let whole = body.len() / 8;
    let first = off / 8;
    // Compare a block of words at a time so the loop has no early exit to stop it from being unrolled.
    const BLOCK: usize = 64;
    let words = &body[..whole * 8];
    for (b, block) in words.chunks(BLOCK * 8).enumerate() {
        let base = first + (b * BLOCK) as u64;
        let mut diff = 0u64;
        for (i, w) in block.chunks_exact(8).enumerate() {
            let got = u64::from_le_bytes(w.try_into().expect("chunks_exact gives 8 bytes"));
            diff |= got ^ word(seed, base + i as u64);
        }
        if diff != 0 {
            let start = off + (b * BLOCK * 8) as u64;
            let mut expect = vec![0u8; block.len()];
            fill(seed, start, &mut expect);
            let at = block
                .iter()
                .zip(&expect)
                .position(|(a, e)| a != e)
                .expect("a difference was seen");
            return Some(start + at as u64);
        }
    }
    let tail_start = whole * 8;
    let tail_off = off + tail_start as u64;
    for (i, &b) in body[tail_start..].iter().enumerate() {
        let o = tail_off + i as u64;
        if b != word(seed, o / 8).to_le_bytes()[(o % 8) as usize] {
            return Some(o);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_matches_the_whole() {
        let mut whole = vec![0u8; 10_000];
        fill(7, 0, &mut whole);
        for (start, len) in [(0usize, 1usize), (3, 17), (8, 8), (4093, 1000), (9_990, 10)] {
            let mut part = vec![0u8; len];
            fill(7, start as u64, &mut part);
            assert_eq!(part, whole[start..start + len], "range {start}+{len}");
            assert_eq!(first_mismatch(7, start as u64, &part), None);
        }
    }

    #[test]
    fn a_wrong_byte_is_found_where_it_is() {
        let mut data = vec![0u8; 5000];
        fill(3, 1234, &mut data);
        for bad in [0usize, 5, 8, 600, 4999] {
            let mut copy = data.clone();
            copy[bad] ^= 0x40;
            assert_eq!(first_mismatch(3, 1234, &copy), Some(1234 + bad as u64));
        }
        assert_eq!(
            first_mismatch(4, 1234, &data),
            Some(1234),
            "another seed differs at once"
        );
    }

    #[test]
    fn content_looks_random() {
        let mut data = vec![0u8; 1 << 16];
        fill(1, 0, &mut data);
        let mut counts = [0u32; 256];
        data.iter().for_each(|&b| counts[b as usize] += 1);
        let expected = data.len() as f64 / 256.0;
        assert!(counts.iter().all(|&c| (c as f64 - expected).abs() < expected * 0.5));
    }
}
