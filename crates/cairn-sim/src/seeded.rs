//! Determinism: every generated fact of the tenant is a pure function of the seed and the
//! item's coordinates, so nothing generated has to be kept in memory.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit permutation.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hash of a seed and a path of coordinates.
pub fn hash(seed: u64, parts: &[u64]) -> u64 {
    let mut h = mix(seed ^ 0xC2B2_AE3D_27D4_EB4F);
    for p in parts {
        h = mix(h ^ p.wrapping_mul(0x1656_67B1_9E37_79F9));
    }
    h
}

/// A reproducible random generator for one coordinate path.
pub fn rng(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(hash(seed, parts))
}

/// A GUID-shaped identifier derived from a hash.
pub fn guid(seed: u64, parts: &[u64]) -> String {
    let a = hash(seed, parts);
    let b = mix(a);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a as u16) & 0x0fff,
        ((b >> 48) as u16 & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Picks an element of a slice from a hash.
pub fn pick<T: Copy>(h: u64, items: &[T]) -> T {
    items[(h % items.len() as u64) as usize]
}

/// A size drawn from a log-normal-like distribution with the given median, capped.
pub fn lognormal_size(h: u64, median: f64, sigma: f64, max: u64) -> u64 {
    // Box-Muller from two uniform values taken from the hash.
    let u1 = ((h >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
    let u2 = (mix(h) >> 11) as f64 / (1u64 << 53) as f64;
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let v = median * (sigma * z).exp();
    (v.max(0.0) as u64).min(max)
}

/// Content bytes of a generated blob at any offset: fixed 64 KiB blocks, each a pure function of
/// (content seed, block index), so a `Range` request never generates more than it serves.
pub const BLOCK: u64 = 64 * 1024;

pub fn fill_block(content_seed: u64, block: u64, out: &mut Vec<u8>, len: usize) {
    // Text-like bytes compress like real documents do (not perfectly, not at all).
    const WORDS: &[&str] = &[
        "the ",
        "budget ",
        "quarter ",
        "report ",
        "meeting ",
        "project ",
        "customer ",
        "and ",
        "of ",
        "review ",
        "draft ",
        "final ",
        "numbers ",
        "2024 ",
        "team ",
        "plan ",
        "risk ",
        "Zürich ",
        "données ",
        "東京 ",
        "delivery ",
        "invoice ",
        "contract ",
        "\n",
    ];
    let mut h = hash(content_seed, &[block]);
    let start = out.len();
    while out.len() - start < len {
        h = mix(h);
        if h % 7 == 0 {
            // Some incompressible noise.
            out.extend_from_slice(&h.to_le_bytes());
        } else {
            out.extend_from_slice(WORDS[(h >> 8) as usize % WORDS.len()].as_bytes());
        }
    }
    out.truncate(start + len);
}

/// Bytes `[from, to)` of a generated blob of `size` bytes.
pub fn blob_range(content_seed: u64, size: u64, from: u64, to: u64) -> Vec<u8> {
    assemble(size, from, to, |block, len| {
        let mut buf = Vec::with_capacity(len);
        fill_block(content_seed, block, &mut buf, len);
        buf
    })
}

/// Bytes `[from, to)` of `size` uniformly random bytes, block by block like `blob_range`:
/// what encryption leaves of a file (no structure, nothing to compress).
pub fn noise_range(seed: u64, size: u64, from: u64, to: u64) -> Vec<u8> {
    use rand::RngCore;
    assemble(size, from, to, |block, len| {
        let mut buf = vec![0; len];
        rng(seed, &[0x4E, block]).fill_bytes(&mut buf);
        buf
    })
}

/// Cuts `[from, to)` out of content made of `BLOCK`-sized blocks, each made by `block(index,
/// len)`, so that only the blocks the range touches are made.
fn assemble(size: u64, from: u64, to: u64, block: impl Fn(u64, usize) -> Vec<u8>) -> Vec<u8> {
    let to = to.min(size);
    let mut out = Vec::with_capacity((to.saturating_sub(from)) as usize);
    let mut pos = from;
    while pos < to {
        let index = pos / BLOCK;
        let block_start = index * BLOCK;
        let block_len = BLOCK.min(size - block_start) as usize;
        let buf = block(index, block_len);
        let a = (pos - block_start) as usize;
        let b = ((to - block_start) as usize).min(block_len);
        out.extend_from_slice(&buf[a..b]);
        pos = block_start + b as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ranges_reassemble() {
        let size = 3 * BLOCK + 17;
        let whole = blob_range(7, size, 0, size);
        assert_eq!(whole.len() as u64, size);
        let mut parts = Vec::new();
        let mut pos = 0;
        for step in [1000u64, BLOCK, 5, BLOCK * 2, 100_000] {
            let end = (pos + step).min(size);
            parts.extend(blob_range(7, size, pos, end));
            pos = end;
        }
        assert_eq!(parts, whole);
        assert_ne!(blob_range(8, size, 0, size), whole);
    }

    #[test]
    fn noise_ranges_reassemble_and_look_random() {
        let size = 2 * BLOCK + 5;
        let whole = noise_range(3, size, 0, size);
        assert_eq!(whole.len() as u64, size);
        let parts: Vec<u8> = [(0, 7), (7, BLOCK + 1), (BLOCK + 1, size)]
            .into_iter()
            .flat_map(|(a, b)| noise_range(3, size, a, b))
            .collect();
        assert_eq!(parts, whole);
        assert_ne!(noise_range(4, size, 0, size), whole);
        // Every byte value about equally often: close to 8 bits of entropy per byte.
        let mut counts = [0u64; 256];
        for b in &whole {
            counts[*b as usize] += 1;
        }
        let n = whole.len() as f64;
        let entropy: f64 = counts
            .iter()
            .filter(|c| **c > 0)
            .map(|c| {
                let p = *c as f64 / n;
                -p * p.log2()
            })
            .sum();
        assert!(entropy > 7.99, "{entropy}");
    }

    #[test]
    fn guid_is_stable_and_shaped() {
        let g = guid(1, &[2, 3]);
        assert_eq!(g, guid(1, &[2, 3]));
        assert_eq!(g.len(), 36);
        assert_ne!(g, guid(1, &[2, 4]));
    }
}
