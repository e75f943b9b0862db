//! A small deterministic PRNG (xoshiro256**, seeded through SplitMix64) and the arithmetic the
//! generators need, written with IEEE basic operations only (`+ - * /` and `sqrt`, which are
//! correctly rounded everywhere) so that every machine draws the same numbers.

/// One step of SplitMix64: a good 64-bit mixer, used to seed and to hash.
pub(super) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes one word (the SplitMix64 finaliser of `x`).
pub(super) fn mix(x: u64) -> u64 {
    let mut s = x;
    splitmix(&mut s)
}

/// FNV-1a of a string: a stable hash of names (`"saas"`, `"invoice"`).
pub(super) fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// xoshiro256**: the generator every entity draws from.
#[derive(Debug, Clone)]
pub(super) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from one word.
    pub(super) fn new(seed: u64) -> Self {
        let mut st = seed;
        let s = [
            splitmix(&mut st),
            splitmix(&mut st),
            splitmix(&mut st),
            splitmix(&mut st),
        ];
        Rng { s }
    }

    /// The generator of one entity: a function of the run's seed, the model, the kind of
    /// entity (`"user"`, `"product"`) and its index only, so any table can regenerate it.
    pub(super) fn entity(seed: u64, model: &str, kind: &str, index: u64) -> Self {
        let a = mix(seed ^ fnv1a(model));
        let b = mix(a ^ fnv1a(kind).rotate_left(23));
        Rng::new(mix(b ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
    }

    /// The next 64 random bits.
    pub(super) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`.
    pub(super) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform integer in `[lo, hi]` (inclusive; `lo` when `hi < lo`).
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let width = (hi - lo) as u64 + 1;
        lo + self.below(width) as i64
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// An element of a non-empty slice, uniformly.
    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len().saturating_sub(1))]
    }

    /// An index drawn with the given (non-negative) weights.
    pub(super) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// An exponential variate with the given mean.
    pub(super) fn exp(&mut self, mean: f64) -> f64 {
        -mean * ln(1.0 - self.f64())
    }

    /// A number of seconds, exponentially distributed with a mean of `mean` seconds.
    pub(super) fn exp_secs(&mut self, mean: f64) -> i64 {
        let v = self.exp(mean);
        if v > 1.0e12 {
            1_000_000_000_000
        } else {
            v as i64
        }
    }

    /// 128 random bits, to be shown as a UUID with [`uuid`].
    pub(super) fn uuid_bits(&mut self) -> (u64, u64) {
        (self.next_u64(), self.next_u64())
    }
}

/// A UUID-shaped string (version 4 layout) from 128 bits.
pub(super) fn uuid(bits: (u64, u64)) -> String {
    let (a, b) = bits;
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// Natural logarithm from basic operations only (deterministic on every machine).
/// `x <= 0` gives a large negative number instead of `-inf`.
pub(super) fn ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return -745.0;
    }
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    if exponent == -1023 {
        // Subnormal: normalise by hand.
        let scaled = x * (1u64 << 54) as f64;
        let b = scaled.to_bits();
        exponent = ((b >> 52) & 0x7FF) as i64 - 1023 - 54;
        m = f64::from_bits((b & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    }
    // m in [1, 2): bring it to [sqrt(1/2), sqrt(2)) for a faster series.
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        exponent += 1;
    }
    // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..14 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    exponent as f64 * std::f64::consts::LN_2 + 2.0 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        for &x in &[
            1e-300, 1e-10, 0.001, 0.1, 0.5, 0.7, 1.0, 1.5, 2.0, 10.0, 12345.678,
        ] {
            let d = (ln(x) - x.ln()).abs();
            assert!(
                d < 1e-12 * (1.0 + x.ln().abs()),
                "{x}: {} vs {}",
                ln(x),
                x.ln()
            );
        }
    }

    #[test]
    fn streams_are_reproducible() {
        let mut a = Rng::entity(7, "saas", "user", 3);
        let mut b = Rng::entity(7, "saas", "user", 3);
        let mut c = Rng::entity(7, "saas", "user", 4);
        let x: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let y: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let z: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(x, y);
        assert_ne!(x, z);
        let u = uuid(Rng::new(1).uuid_bits());
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
