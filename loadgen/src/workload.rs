//! Workload definition: which operations to issue, on which keys, with which values.

use std::fmt;
use std::io::Write as _;
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The operation mix of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Only `SET` requests.
    Set,
    /// Only `GET` requests.
    Get,
    /// `read_pct` percent `GET`s, the rest `SET`s, chosen at random per request.
    Mixed {
        /// Percentage of reads, 0..=100.
        read_pct: u8,
    },
}

/// Error returned when a `--workload` value cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid workload `{0}`: expected `set`, `get` or `mixed:R` with R a read percentage in 0..=100")]
pub struct ParseWorkloadError(String);

impl FromStr for Workload {
    type Err = ParseWorkloadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseWorkloadError(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "set" => Ok(Workload::Set),
            "get" => Ok(Workload::Get),
            other => {
                let pct = other.strip_prefix("mixed:").ok_or_else(err)?;
                let read_pct: u8 = pct.trim().parse().map_err(|_| err())?;
                if read_pct > 100 {
                    return Err(err());
                }
                Ok(Workload::Mixed { read_pct })
            }
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Set => f.write_str("set"),
            Workload::Get => f.write_str("get"),
            Workload::Mixed { read_pct } => write!(f, "mixed:{read_pct}"),
        }
    }
}

/// One request kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `SET key value`.
    Set,
    /// `GET key`.
    Get,
}

impl Workload {
    /// Draws the next operation.
    pub fn next_op<R: Rng + ?Sized>(&self, rng: &mut R) -> Op {
        match *self {
            Workload::Set => Op::Set,
            Workload::Get => Op::Get,
            Workload::Mixed { read_pct } => {
                if rng.random_range(0..100u8) < read_pct {
                    Op::Get
                } else {
                    Op::Set
                }
            }
        }
    }
}

/// Generates keys `{prefix}{n:0width}` with `n` uniform in `[0, keyspace)`.
///
/// `width` is the number of decimal digits of `keyspace - 1`, so all keys of
/// a run have the same length.
#[derive(Debug, Clone)]
pub struct KeyGen {
    prefix: Vec<u8>,
    keyspace: u64,
    width: usize,
}

impl KeyGen {
    /// Creates a generator; `keyspace` is clamped to at least 1.
    pub fn new(prefix: &str, keyspace: u64) -> Self {
        let keyspace = keyspace.max(1);
        let width = decimal_digits(keyspace - 1);
        Self {
            prefix: prefix.as_bytes().to_vec(),
            keyspace,
            width,
        }
    }

    /// Draws a key index uniformly from `[0, keyspace)`.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        rng.random_range(0..self.keyspace)
    }

    /// Replaces the contents of `out` with the key for index `n`.
    pub fn write_key(&self, n: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.prefix);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{n:0width$}", width = self.width);
    }

    /// The length in bytes of every generated key.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + self.width
    }
}

fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// Characters used in generated values: printable ASCII without spaces,
/// restricted to alphanumerics so no server treats them specially.
const VALUE_CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Generates a random value of `size` alphanumeric bytes.
pub fn make_value<R: Rng + ?Sized>(size: usize, rng: &mut R) -> Vec<u8> {
    (0..size)
        .map(|_| VALUE_CHARSET[rng.random_range(0..VALUE_CHARSET.len())])
        .collect()
}

/// The random generator of client `index`: derived from `seed` so runs with
/// the same `--seed` (and build) produce the same request stream per client.
pub fn client_rng(seed: u64, index: usize) -> SmallRng {
    // Spread client indices with the golden-ratio constant (splitmix64 step).
    let mixed = seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    SmallRng::seed_from_u64(mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workloads() {
        assert_eq!("set".parse::<Workload>().unwrap(), Workload::Set);
        assert_eq!("GET".parse::<Workload>().unwrap(), Workload::Get);
        assert_eq!(
            "mixed:90".parse::<Workload>().unwrap(),
            Workload::Mixed { read_pct: 90 }
        );
        assert_eq!(
            "mixed:0".parse::<Workload>().unwrap(),
            Workload::Mixed { read_pct: 0 }
        );
        assert_eq!(
            "mixed:100".parse::<Workload>().unwrap(),
            Workload::Mixed { read_pct: 100 }
        );
        for bad in [
            "",
            "mixed",
            "mixed:",
            "mixed:101",
            "mixed:-1",
            "mixed:x",
            "del",
        ] {
            assert!(bad.parse::<Workload>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn workload_display_round_trips() {
        for w in [
            Workload::Set,
            Workload::Get,
            Workload::Mixed { read_pct: 90 },
        ] {
            assert_eq!(w.to_string().parse::<Workload>().unwrap(), w);
        }
    }

    #[test]
    fn mixed_ratio_is_roughly_respected() {
        let mut rng = client_rng(1, 0);
        let w = Workload::Mixed { read_pct: 90 };
        let gets = (0..10_000)
            .filter(|_| w.next_op(&mut rng) == Op::Get)
            .count();
        assert!((8_500..=9_500).contains(&gets), "gets = {gets}");
        let all_sets = Workload::Mixed { read_pct: 0 };
        assert!((0..1000).all(|_| all_sets.next_op(&mut rng) == Op::Set));
        let all_gets = Workload::Mixed { read_pct: 100 };
        assert!((0..1000).all(|_| all_gets.next_op(&mut rng) == Op::Get));
    }

    #[test]
    fn keys_are_zero_padded_and_in_range() {
        let g = KeyGen::new("key:", 100_000);
        let mut k = Vec::new();
        g.write_key(42, &mut k);
        assert_eq!(k, b"key:00042");
        assert_eq!(k.len(), g.key_len());
        g.write_key(99_999, &mut k);
        assert_eq!(k, b"key:99999");

        let mut rng = client_rng(3, 1);
        assert!((0..10_000).all(|_| g.pick(&mut rng) < 100_000));

        let one = KeyGen::new("", 1);
        one.write_key(one.pick(&mut rng), &mut k);
        assert_eq!(k, b"0");
        let zero = KeyGen::new("p", 0);
        assert_eq!(zero.pick(&mut rng), 0);
        let ten = KeyGen::new("k", 10);
        ten.write_key(9, &mut k);
        assert_eq!(k, b"k9");
        let eleven = KeyGen::new("k", 11);
        eleven.write_key(3, &mut k);
        assert_eq!(k, b"k03");
    }

    #[test]
    fn values_are_printable_without_spaces() {
        let mut rng = client_rng(9, 0);
        for size in [1, 7, 100, 4096] {
            let v = make_value(size, &mut rng);
            assert_eq!(v.len(), size);
            assert!(v.iter().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn seeding_is_deterministic_per_client() {
        let g = KeyGen::new("key:", 1_000_000);
        let draw = |seed, idx| {
            let mut rng = client_rng(seed, idx);
            (0..32).map(|_| g.pick(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(5, 0), draw(5, 0));
        assert_ne!(draw(5, 0), draw(5, 1));
        assert_ne!(draw(5, 0), draw(6, 0));
    }
}
