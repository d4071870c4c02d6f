//! The fixture's content: a pure function of (seed, offset).
//!
//! The file is a run of 4 KiB pages. Every page is the same seed-derived random page (the template) XORed with a
//! 64-bit constant repeated across it, and that constant is a hash of the seed and the page's index:
//!
//! ```text
//! byte(o) = template[o % 4096] ^ le_bytes(page_key(o / 4096))[o % 8]
//! ```
//!
//! Any range can be generated or checked on its own, in parallel and without reading the file back. A page sent in
//! the wrong place differs from the expected one in every byte lane its constant differs in, a page shifted or
//! corrupted within itself differs from the random template, and no LZ-style compressor (as filesystems use)
//! finds repeats in it: two pages share a 4-byte run at the same position only when 4 bytes of their 64-bit keys
//! collide. Checking costs two loads, two XORs and an OR per 8 bytes, whatever the alignment of the range, so the
//! sink verifies at cache speed: that is what keeps `--verify` from becoming the thing measured. Version 2, a 32-bit
//! hash per 4-byte lane, checked at about 10 GB/s aligned and 6 GB/s at the odd offsets `recv` returns.

/// Version of this generator, recorded in the fixture's sidecar: a file made by another version is remade.
pub const GENERATOR_VERSION: u32 = 3;

/// The period of the template.
const PAGE: usize = 4096;

/// splitmix64's finaliser: a bijection of u64 with full avalanche.
#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The content of the file made with one seed: build once, then fill or check any number of ranges.
#[derive(Clone)]
pub struct Pattern {
    template: Box<[u8; PAGE]>,
    key: u64,
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        let mut state = mix64(seed.wrapping_add(0x9e37_79b9_7f4a_7c15));
        let key = mix64(state ^ 0x6a09_e667_f3bc_c908);
        let mut template = Box::new([0u8; PAGE]);
        for word in template.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            word.copy_from_slice(&mix64(state).to_le_bytes());
        }
        Pattern { template, key }
    }

    /// The constant XORed over page `page`.
    #[inline(always)]
    fn page_key(&self, page: u64) -> u64 {
        mix64(page.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.key)
    }

    /// Calls `f(template_slice, constant, start)` for each page-bounded segment of `offset .. offset + len`, where
    /// `constant` is the page key rotated so that its byte 0 belongs to the segment's first byte and `start` is the
    /// segment's position in the range. Stops early when `f` returns false.
    #[inline(always)]
    fn segments(&self, offset: u64, len: usize, mut f: impl FnMut(&[u8], u64, usize) -> bool) {
        let mut done = 0usize;
        while done < len {
            let at = offset + done as u64;
            let in_page = (at % PAGE as u64) as usize;
            let take = (PAGE - in_page).min(len - done);
            let key = self.page_key(at / PAGE as u64).rotate_right(8 * (in_page % 8) as u32);
            if !f(&self.template[in_page..in_page + take], key, done) {
                return;
            }
            done += take;
        }
    }

    /// Fills `buf` with the content found at `offset`.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        dispatch_fill(self, offset, buf)
    }

    /// Checks `data` against the content at `offset`; returns the absolute offset of the first wrong byte.
    pub fn first_mismatch(&self, offset: u64, data: &[u8]) -> Option<u64> {
        let mut found = None;
        self.segments(offset, data.len(), |template, key, start| {
            let got = &data[start..start + template.len()];
            if dispatch_diff(template, key, got) == 0 {
                return true;
            }
            let lanes = key.to_le_bytes();
            let byte = got
                .iter()
                .zip(template)
                .enumerate()
                .position(|(i, (g, t))| *g != t ^ lanes[i % 8]);
            found = Some(offset + (start + byte.unwrap_or(0)) as u64);
            false
        });
        found
    }
}

/// Writes one segment: `out = template ^ key` in 8-byte lanes, the tail byte by byte.
#[inline(always)]
fn fill_segment(template: &[u8], key: u64, out: &mut [u8]) {
    let mut outs = out.chunks_exact_mut(8);
    let mut temps = template.chunks_exact(8);
    for (o, t) in (&mut outs).zip(&mut temps) {
        let t = u64::from_le_bytes(t.try_into().expect("8-byte chunk"));
        o.copy_from_slice(&(t ^ key).to_le_bytes());
    }
    let lanes = key.to_le_bytes();
    for (i, (o, t)) in outs.into_remainder().iter_mut().zip(temps.remainder()).enumerate() {
        *o = t ^ lanes[i];
    }
}

/// OR of every difference between `got` and `template ^ key`: zero when the segment is right. No early exit, so
/// the loop stays vectorised.
#[inline(always)]
fn diff_segment(template: &[u8], key: u64, got: &[u8]) -> u64 {
    let gots = got.chunks_exact(8);
    let temps = template.chunks_exact(8);
    let (got_tail, temp_tail) = (gots.remainder(), temps.remainder());
    let body = gots.zip(temps).fold(0u64, |d, (g, t)| {
        let g = u64::from_le_bytes(g.try_into().expect("8-byte chunk"));
        let t = u64::from_le_bytes(t.try_into().expect("8-byte chunk"));
        d | (g ^ t ^ key)
    });
    let lanes = key.to_le_bytes();
    got_tail
        .iter()
        .zip(temp_tail)
        .enumerate()
        .fold(body, |d, (i, (g, t))| d | u64::from(g ^ t ^ lanes[i]))
}

fn fill_generic(p: &Pattern, offset: u64, buf: &mut [u8]) {
    p.segments(offset, buf.len(), |template, key, start| {
        fill_segment(template, key, &mut buf[start..start + template.len()]);
        true
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(p: &Pattern, offset: u64, buf: &mut [u8]) {
    fill_generic(p, offset, buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn diff_avx2(template: &[u8], key: u64, got: &[u8]) -> u64 {
    diff_segment(template, key, got)
}

#[inline]
fn dispatch_fill(p: &Pattern, offset: u64, buf: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just seen to have AVX2, the only requirement of `fill_avx2`.
            return unsafe { fill_avx2(p, offset, buf) };
        }
    }
    fill_generic(p, offset, buf)
}

#[inline]
fn dispatch_diff(template: &[u8], key: u64, got: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just seen to have AVX2, the only requirement of `diff_avx2`.
            return unsafe { diff_avx2(template, key, got) };
        }
    }
    diff_segment(template, key, got)
}

/// Fills `buf` with the content found at `offset` of a file with `seed` (builds the pattern: for one-off ranges).
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    Pattern::new(seed).fill(offset, buf)
}

/// Checks `data` against the content at `offset` of a file with `seed`; returns the offset of the first wrong byte.
pub fn first_mismatch(seed: u64, offset: u64, data: &[u8]) -> Option<u64> {
    Pattern::new(seed).first_mismatch(offset, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The definition, byte by byte, with nothing shared with the fast paths but the keys.
    fn reference(p: &Pattern, offset: u64) -> u8 {
        let page = offset / PAGE as u64;
        let in_page = (offset % PAGE as u64) as usize;
        p.template[in_page] ^ p.page_key(page).to_le_bytes()[in_page % 8]
    }

    #[test]
    fn matches_its_definition_at_every_alignment() {
        let p = Pattern::new(11);
        for (start, len) in [
            (0u64, 9000usize),
            (1, 8191),
            (4095, 2),
            (4093, 17),
            (7, 5),
            (1 << 40, 4100),
        ] {
            let mut buf = vec![0u8; len];
            p.fill(start, &mut buf);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(*b, reference(&p, start + i as u64), "byte {} of {start}+{len}", i);
            }
        }
    }

    #[test]
    fn any_range_matches_the_whole() {
        let mut whole = vec![0u8; 20_000];
        fill(7, 0, &mut whole);
        for (start, len) in [
            (0usize, 1usize),
            (3, 17),
            (8, 8),
            (4093, 1000),
            (4096, 4096),
            (19_990, 10),
        ] {
            let mut part = vec![0u8; len];
            fill(7, start as u64, &mut part);
            assert_eq!(part, whole[start..start + len], "range {start}+{len}");
            assert_eq!(first_mismatch(7, start as u64, &part), None);
        }
    }

    #[test]
    fn a_wrong_byte_is_found_where_it_is() {
        let mut data = vec![0u8; 9000];
        fill(3, 1234, &mut data);
        for bad in [0usize, 5, 8, 600, 2861, 2862, 8999] {
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
    fn a_wrong_byte_is_found_in_every_vector_lane() {
        // Several 32-byte vectors of the fast path and a tail, starting at an odd offset as recv leaves them.
        let at = 4096 * 7 + 13;
        let mut data = vec![0u8; 3 * 128 + 37];
        fill(9, at, &mut data);
        for bad in 0..data.len() {
            let mut copy = data.clone();
            copy[bad] ^= 0x01;
            assert_eq!(first_mismatch(9, at, &copy), Some(at + bad as u64));
        }
    }

    #[test]
    fn a_page_in_the_wrong_place_is_found() {
        let mut data = vec![0u8; 3 * PAGE];
        fill(5, 0, &mut data);
        let (first, rest) = data.split_at_mut(PAGE);
        rest[PAGE..].copy_from_slice(first);
        assert_eq!(first_mismatch(5, 0, &data), Some(2 * PAGE as u64));
        let mut shifted = vec![0u8; PAGE];
        fill(5, 8, &mut shifted);
        assert!(first_mismatch(5, 0, &shifted).is_some(), "a page shifted by 8 bytes");
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

    #[test]
    fn no_run_repeats_for_a_compressor_to_find() {
        // An LZ compressor needs a repeated run; over 1 MiB no 6-byte run occurs twice (a random stream this
        // long repeats one with probability about 2^-9), so there is nothing for it to match.
        let mut data = vec![0u8; 1 << 20];
        fill(2, 0, &mut data);
        let mut seen = HashSet::with_capacity(data.len());
        let repeats = data
            .windows(6)
            .filter(|w| !seen.insert(<[u8; 6]>::try_from(*w).unwrap()))
            .count();
        assert_eq!(repeats, 0);
    }
}
