//! The fixture's content: a pure function of (seed, offset).
//!
//! Byte `o` of a file with seed `s` is byte `o % 4` (little-endian) of `lane(s, o / 4)`, a 32-bit integer hash
//! (Wellons' lowbias32) of the lane's index, keyed by the seed. Any range can be generated or checked on its own, in
//! parallel and without reading the file back, and the stream is incompressible. Lanes are made 256 at a time in a
//! loop the compiler turns into SIMD (with AVX2 where the CPU has it), because checking at memory speed is what
//! keeps `--verify` from becoming the thing measured.

/// Version of this generator, recorded in the fixture's sidecar: a file made by another version is remade.
pub const GENERATOR_VERSION: u32 = 2;

/// Lanes generated per block; a divisor of 2^32, so the high half of a lane index is constant within a block.
const BLOCK: usize = 256;

/// The two 32-bit keys derived from a seed (splitmix64 of the seed).
#[derive(Clone, Copy)]
struct Keys {
    mix: u32,
    add: u32,
}

impl Keys {
    fn new(seed: u64) -> Keys {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Keys {
            mix: z as u32,
            add: (z >> 32) as u32,
        }
    }

    /// The part of the hash input that depends on the high half of the index and the seed.
    #[inline(always)]
    fn high(self, lane_index: u64) -> u32 {
        ((lane_index >> 32) as u32).wrapping_mul(0x85eb_ca77) ^ self.mix
    }
}

#[inline(always)]
fn hash(low: u32, high: u32, add: u32) -> u32 {
    let mut x = low.wrapping_mul(0x9e37_79b1) ^ high;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x.wrapping_add(add)
}

/// The 32-bit lane at `lane_index` of the stream for `seed`.
#[inline(always)]
fn lane(keys: Keys, lane_index: u64) -> u32 {
    hash(lane_index as u32, keys.high(lane_index), keys.add)
}

/// The byte at `offset` of the stream.
#[inline(always)]
fn byte_at(keys: Keys, offset: u64) -> u8 {
    lane(keys, offset / 4).to_le_bytes()[(offset % 4) as usize]
}

/// Lanes `first .. first + BLOCK`, where `first` is a multiple of BLOCK.
#[inline(always)]
fn block_generic(keys: Keys, first: u64, out: &mut [u32; BLOCK]) {
    let (low, high) = (first as u32, keys.high(first));
    for (i, o) in out.iter_mut().enumerate() {
        *o = hash(low.wrapping_add(i as u32), high, keys.add);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_avx2(keys: Keys, first: u64, out: &mut [u32; BLOCK]) {
    block_generic(keys, first, out)
}

#[inline]
fn block(keys: Keys, first: u64, out: &mut [u32; BLOCK]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just seen to have AVX2, the only requirement of `block_avx2`.
            return unsafe { block_avx2(keys, first, out) };
        }
    }
    block_generic(keys, first, out)
}

const BLOCK_BYTES: u64 = (BLOCK * 4) as u64;

/// Whether a whole aligned block of lanes starts at `at` and ends by `end`.
#[inline(always)]
fn whole_block_at(at: u64, end: u64) -> bool {
    at % BLOCK_BYTES == 0 && end - at >= BLOCK_BYTES
}

/// Fills `buf` with the content found at `offset` of a file with `seed`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let keys = Keys::new(seed);
    let end = offset + buf.len() as u64;
    let mut lanes = [0u32; BLOCK];
    let mut at = offset;
    while at < end {
        let pos = (at - offset) as usize;
        if whole_block_at(at, end) {
            block(keys, at / 4, &mut lanes);
            for (out, l) in buf[pos..pos + BLOCK * 4].chunks_exact_mut(4).zip(&lanes) {
                out.copy_from_slice(&l.to_le_bytes());
            }
            at += BLOCK_BYTES;
        } else {
            buf[pos] = byte_at(keys, at);
            at += 1;
        }
    }
}

/// Checks `data` against the content at `offset`; returns the absolute offset of the first wrong byte.
pub fn first_mismatch(seed: u64, offset: u64, data: &[u8]) -> Option<u64> {
    let keys = Keys::new(seed);
    let end = offset + data.len() as u64;
    let mut lanes = [0u32; BLOCK];
    let mut at = offset;
    while at < end {
        let pos = (at - offset) as usize;
        if whole_block_at(at, end) {
            block(keys, at / 4, &mut lanes);
            let got = &data[pos..pos + BLOCK * 4];
            // No early exit inside the block, so the loop stays vectorised; find the byte only once it differs.
            let diff = got
                .chunks_exact(4)
                .zip(&lanes)
                .fold(0u32, |d, (g, l)| d | (u32::from_le_bytes([g[0], g[1], g[2], g[3]]) ^ l));
            if diff != 0 {
                let byte = got
                    .iter()
                    .zip(lanes.iter().flat_map(|l| l.to_le_bytes()))
                    .position(|(g, e)| *g != e);
                return Some(at + byte.unwrap_or(0) as u64);
            }
            at += BLOCK_BYTES;
        } else {
            if data[pos] != byte_at(keys, at) {
                return Some(at);
            }
            at += 1;
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
