//! SHA-256 (FIPS 180-4), written out by hand.
//!
//! Why not the browser's `crypto.subtle.digest`: it is asynchronous (identity changes must be
//! applied before `identify` returns to the page's next line, DESIGN §10) and it is missing on
//! plain `http:` pages. Why not the `sha2` crate: this is ≈ 1.4 KB smaller in the wasm binary.
//! No panicking index paths: blocks are walked with `chunks_exact` and fixed-size arrays.

#[allow(unused_imports)]
use crate::core::prelude::*;

/// The round constants `K` (the first 32 bits of the fractional parts of the cube roots of the
/// first 64 primes) and the initial hash `H0` (the same of the square roots of the first 8),
/// computed rather than stored: 288 bytes of table that gzip cannot shrink, against a few
/// dozen of code. The roots are found by Newton's method in `f64`, whose basic operations are
/// exactly rounded everywhere, so the wasm computes what the native tests check against the
/// published constants (`tests/identity.rs`).
#[inline(always)]
pub fn constants() -> ([u32; 8], [u32; 64]) {
    let (mut h, mut k) = ([0u32; 8], [0u32; 64]);
    let (mut n, mut p) = (0usize, 2u32);
    while n < 64 {
        let mut d = 2;
        while d * d <= p && p.checked_rem(d) != Some(0) {
            d += 1;
        }
        if d * d > p {
            if let Some(x) = h.get_mut(n) {
                *x = root_bits(p as f64, 2.0);
            }
            if let Some(x) = k.get_mut(n) {
                *x = root_bits(p as f64, 3.0);
            }
            n += 1;
        }
        p += 1;
    }
    (h, k)
}

/// The first 32 bits of the fractional part of `p`'s square (`e` 2) or cube (`e` 3) root.
fn root_bits(p: f64, e: f64) -> u32 {
    // From above, Newton's steps only go down until the root is reached (≈ 15 for the largest).
    let mut x = p;
    loop {
        let y = if e == 2.0 { x } else { x * x };
        let next = x - (y * x - p) / (e * y);
        if next >= x {
            break;
        }
        x = next;
    }
    (x * 4294967296.0) as u64 as u32
}

fn compress(h: &mut [u32; 8], block: &[u8; 64], k: &[u32; 64]) {
    let mut w = [0u32; 64];
    for i in 0..64 {
        w[i] = if i < 16 {
            u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]])
        } else {
            let (a, b) = (w[i - 15], w[i - 2]);
            let s0 = a.rotate_right(7) ^ a.rotate_right(18) ^ (a >> 3);
            let s1 = b.rotate_right(17) ^ b.rotate_right(19) ^ (b >> 10);
            w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1)
        };
    }
    let mut v = *h;
    for i in 0..64 {
        let [a, b, c, d, e, f, g, hh] = v;
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let t1 = hh.wrapping_add(s1).wrapping_add((e & f) ^ (!e & g)).wrapping_add(k[i]).wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let t2 = s0.wrapping_add((a & b) ^ (a & c) ^ (b & c));
        v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
    }
    for i in 0..8 {
        h[i] = h[i].wrapping_add(v[i]);
    }
}

/// The SHA-256 digest of a string's UTF-8 bytes, as 64 lowercase hex characters.
pub fn sha256_hex(s: &str) -> String {
    let data = s.as_bytes();
    let len = data.len();
    // Message, 0x80, zeros, then the bit length big-endian: a whole number of 64-byte blocks.
    let total = (len + 72) & !63;
    let bits = (len as u64).wrapping_mul(8).to_be_bytes();
    let (mut h, k) = constants();
    let mut block = [0u8; 64];
    for i in 0..total {
        block[i & 63] = match data.get(i) {
            Some(b) => *b,
            None if i == len => 0x80,
            None => bits.get((i + 8).wrapping_sub(total)).copied().unwrap_or(0),
        };
        if i & 63 == 63 {
            compress(&mut h, &block, &k);
        }
    }
    // Written out by the ids' hex writer (one loop instead of two).
    let mut bytes = Vec::with_capacity(32);
    for x in h {
        bytes.extend_from_slice(&x.to_be_bytes());
    }
    crate::core::ids::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }
}
