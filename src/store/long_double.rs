//! `INCRBYFLOAT`'s arithmetic, exactly as an x86-64 redis-server does it:
//! numbers are x87 80-bit `long double`s (a 64-bit significand), read as
//! `strtold` reads them (correctly rounded, half to even), added with one
//! rounding, and written as `%.17Lf` with trailing zeros removed (Redis'
//! `ld2string(…, LD_STR_HUMAN)`), which is what it stores and replies.
//!
//! Everything is computed with exact big integers, so each result is the
//! correctly rounded one (`0.1 + 0.2` is `0.3`, not the `0.30000000000000004`
//! of a `f64`). Hexadecimal floats (`0x1p3`), which `strtold` also reads,
//! are refused here.

use num_bigint::BigUint;
use num_traits::{One, Zero};

/// Bits of the significand.
const SIGNIFICAND_BITS: u64 = 64;
/// The exponent of the smallest subnormal's one bit: the smallest normal
/// number is 2^-16382, a significand in `[2^63, 2^64)` times 2^-16445.
const MIN_EXPONENT: i64 = -16_445;
/// The largest exponent a finite value has: `(2^64 - 1) × 2^16320` is the
/// largest `long double`.
const MAX_EXPONENT: i64 = 16_320;
/// Redis refuses texts of this many bytes or more (`MAX_LONG_DOUBLE_CHARS`).
const MAX_TEXT_BYTES: usize = 5 * 1024;
/// Decimal digits after the point in `%.17Lf`.
const FRACTION_DIGITS: u32 = 17;
/// Decimal orders of magnitude beyond which a text overflows (the largest
/// value is about 1.19e4932) or underflows to zero (the smallest
/// subnormal is about 3.6e-4951).
const MAX_DECIMAL_ORDER: i64 = 4_932;
const MIN_DECIMAL_ORDER: i64 = -4_952;

/// An x87 extended-precision number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `±significand × 2^exponent` (zero has a significand of 0).
    Finite {
        /// The sign (`-0` exists, as in IEEE arithmetic).
        negative: bool,
        /// The significand.
        significand: u64,
        /// The power of two it is scaled by.
        exponent: i64,
    },
    /// `inf` / `-inf` (`strtold` reads them; any sum with one is refused).
    Infinite {
        /// The sign.
        negative: bool,
    },
}

/// Why a text is not a number Redis accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutOfRange {
    /// Too large for a `long double`.
    Overflow,
    /// A non-zero value that rounds to zero.
    Underflow,
}

impl LongDouble {
    /// Positive zero: what a missing key counts as.
    pub const ZERO: LongDouble = LongDouble::Finite {
        negative: false,
        significand: 0,
        exponent: 0,
    };

    /// Reads `text` as Redis' `string2ld` does: the whole text is a decimal
    /// number (optional sign, digits with an optional point, an optional
    /// exponent) or `inf`/`infinity`; no spaces, no NaN; a value that
    /// overflows or underflows to zero is refused. `None` when refused.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        if text.is_empty() || text.len() >= MAX_TEXT_BYTES {
            return None;
        }
        let (negative, rest) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Infinite { negative });
        }
        let decimal = Decimal::parse(rest)?;
        let Some(first_digit) = decimal.digits.iter().position(|&d| d != b'0') else {
            return Some(LongDouble::Finite {
                negative,
                significand: 0,
                exponent: 0,
            });
        };
        let digits = &decimal.digits[first_digit..];
        let digit_count = i64::try_from(digits.len()).ok()?;
        let order = digit_count.saturating_add(decimal.exponent) - 1;
        if !(MIN_DECIMAL_ORDER..=MAX_DECIMAL_ORDER).contains(&order) {
            return None;
        }
        let mantissa = BigUint::parse_bytes(digits, 10)?;
        let ten_power = BigUint::from(10u32).pow(u32::try_from(decimal.exponent.abs()).ok()?);
        let (numerator, denominator) = if decimal.exponent >= 0 {
            (mantissa * ten_power, BigUint::one())
        } else {
            (mantissa, ten_power)
        };
        let (significand, exponent) = round(&numerator, &denominator, 0).ok()?;
        Some(LongDouble::Finite {
            negative,
            significand,
            exponent,
        })
    }

    /// `self + other`, rounded once to nearest-even; `None` when the sum is
    /// infinite or NaN (Redis: "increment would produce NaN or Infinity").
    pub fn add(self, other: LongDouble) -> Option<LongDouble> {
        let (
            LongDouble::Finite {
                negative: neg_a,
                significand: a,
                exponent: exp_a,
            },
            LongDouble::Finite {
                negative: neg_b,
                significand: b,
                exponent: exp_b,
            },
        ) = (self, other)
        else {
            return None;
        };
        if a == 0 && b == 0 {
            // -0 + -0 is -0; any other sum of zeros is +0.
            return Some(LongDouble::Finite {
                negative: neg_a && neg_b,
                significand: 0,
                exponent: 0,
            });
        }
        if a == 0 {
            return Some(other);
        }
        if b == 0 {
            return Some(self);
        }
        let base = exp_a.min(exp_b);
        let scaled = |m: u64, e: i64| BigUint::from(m) << u64::try_from(e - base).unwrap_or(0);
        let (big_a, big_b) = (scaled(a, exp_a), scaled(b, exp_b));
        let (magnitude, negative) = if neg_a == neg_b {
            (big_a + big_b, neg_a)
        } else if big_a >= big_b {
            (big_a - big_b, neg_a)
        } else {
            (big_b - big_a, neg_b)
        };
        if magnitude.is_zero() {
            return Some(LongDouble::ZERO);
        }
        let (significand, exponent) = round(&magnitude, &BigUint::one(), base).ok()?;
        Some(LongDouble::Finite {
            negative,
            significand,
            exponent,
        })
    }

    /// The text Redis stores and replies: `%.17Lf` (rounded half to even),
    /// trailing zeros and a trailing point removed, `-0` written `0`.
    /// `None` for an infinite value (never stored).
    pub fn to_redis_text(self) -> Option<String> {
        let LongDouble::Finite {
            negative,
            significand,
            exponent,
        } = self
        else {
            return None;
        };
        let scaled = BigUint::from(significand) * BigUint::from(10u32).pow(FRACTION_DIGITS);
        let fixed = if exponent >= 0 {
            scaled << u64::try_from(exponent).unwrap_or(0)
        } else {
            let shift = exponent.unsigned_abs();
            let quotient = &scaled >> shift;
            let remainder = &scaled - (&quotient << shift);
            let half = BigUint::one() << (shift - 1);
            if remainder > half || (remainder == half && quotient.bit(0)) {
                quotient + 1u32
            } else {
                quotient
            }
        };
        let digits = fixed.to_string();
        let width = FRACTION_DIGITS as usize + 1;
        let digits = format!("{digits:0>width$}");
        let (whole, fraction) = digits.split_at(digits.len() - FRACTION_DIGITS as usize);
        let fraction = fraction.trim_end_matches('0');
        let mut text = String::with_capacity(digits.len() + 2);
        if negative {
            text.push('-');
        }
        text.push_str(whole);
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(fraction);
        }
        if text == "-0" {
            text.remove(0);
        }
        Some(text)
    }
}

/// A decimal number's digits and power of ten: `digits × 10^exponent`.
struct Decimal<'a> {
    /// Every digit, leading zeros included (the point removed).
    digits: std::borrow::Cow<'a, [u8]>,
    /// The power of ten, saturated far beyond any finite value.
    exponent: i64,
}

impl<'a> Decimal<'a> {
    /// `digits [. digits] [e|E [+|-] digits]`, with at least one digit
    /// before the exponent; nothing else.
    fn parse(text: &'a [u8]) -> Option<Decimal<'a>> {
        let mantissa_end = text
            .iter()
            .position(|&c| c == b'e' || c == b'E')
            .unwrap_or(text.len());
        let (mantissa, exponent_part) = text.split_at(mantissa_end);
        let (whole, fraction) = match mantissa.iter().position(|&c| c == b'.') {
            Some(point) => (&mantissa[..point], &mantissa[point + 1..]),
            None => (mantissa, &mantissa[..0]),
        };
        let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let mut exponent = match exponent_part {
            [] => 0,
            [_, rest @ ..] => parse_exponent(rest)?,
        };
        let digits = if fraction.is_empty() {
            std::borrow::Cow::Borrowed(whole)
        } else {
            exponent = exponent.saturating_sub(i64::try_from(fraction.len()).ok()?);
            std::borrow::Cow::Owned([whole, fraction].concat())
        };
        Some(Decimal { digits, exponent })
    }
}

/// `[+|-] digits`, saturated at ±10^12 (far beyond any finite value).
fn parse_exponent(text: &[u8]) -> Option<i64> {
    const SATURATED: i64 = 1_000_000_000_000;
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |n, &d| (n * 10 + i64::from(d - b'0')).min(SATURATED));
    Some(if negative { -magnitude } else { magnitude })
}

/// `numerator / denominator × 2^shift` (positive) rounded to a 64-bit
/// significand, half to even, subnormals included: `(significand,
/// exponent)`.
fn round(numerator: &BigUint, denominator: &BigUint, shift: i64) -> Result<(u64, i64), OutOfRange> {
    let bits = |n: &BigUint| i64::try_from(n.bits()).unwrap_or(i64::MAX);
    let mut exponent = bits(numerator) - bits(denominator) + shift - SIGNIFICAND_BITS as i64;
    let quotient_at = |exponent: i64| {
        let up = shift - exponent;
        let (num, den) = if up >= 0 {
            (numerator << up.unsigned_abs(), denominator.clone())
        } else {
            (numerator.clone(), denominator << up.unsigned_abs())
        };
        let quotient = &num / &den;
        let remainder = num - &quotient * &den;
        (quotient, remainder, den)
    };
    let (mut quotient, mut remainder, mut den) = quotient_at(exponent);
    // The estimate is off by at most one bit either way.
    while quotient.bits() > SIGNIFICAND_BITS {
        exponent += 1;
        (quotient, remainder, den) = quotient_at(exponent);
    }
    while quotient.bits() < SIGNIFICAND_BITS && exponent > MIN_EXPONENT {
        exponent -= 1;
        (quotient, remainder, den) = quotient_at(exponent);
    }
    if exponent < MIN_EXPONENT {
        exponent = MIN_EXPONENT;
        (quotient, remainder, den) = quotient_at(exponent);
    }
    let twice = remainder << 1u32;
    if twice > den || (twice == den && quotient.bit(0)) {
        quotient += 1u32;
    }
    if quotient.bits() > SIGNIFICAND_BITS {
        quotient >>= 1u32;
        exponent += 1;
    }
    if quotient.is_zero() {
        return Err(OutOfRange::Underflow);
    }
    if exponent > MAX_EXPONENT {
        return Err(OutOfRange::Overflow);
    }
    let significand = quotient.iter_u64_digits().next().unwrap_or(0);
    Ok((significand, exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(value: &str, by: &str) -> Option<String> {
        let a = LongDouble::parse(value.as_bytes())?;
        let b = LongDouble::parse(by.as_bytes())?;
        a.add(b)?.to_redis_text()
    }

    #[test]
    fn sums_read_as_redis_writes_them() {
        // Each pair checked against redis-server 7.0.15 on x86-64.
        let cases = [
            ("10.50", "0.1", "10.6"),
            ("0.1", "0.2", "0.3"),
            ("5.0e3", "2.0e2", "5200"),
            ("0", "1", "1"),
            ("1", "-1", "0"),
            ("-0", "-0", "0"),
            ("3", "1.1e-17", "3.00000000000000001"),
            ("1e20", "1", "100000000000000000000"),
            (
                "123456789012345678901234567890",
                "0",
                "123456789012345678899921813504",
            ),
            ("0.000000000000000001", "0", "0"),
            ("-0.000000000000000009", "0", "-0.00000000000000001"),
            ("+7", ".5", "7.5"),
            ("7.", "0", "7"),
        ];
        for (value, by, expected) in cases {
            assert_eq!(incr(value, by).as_deref(), Some(expected), "{value} + {by}");
        }
    }

    #[test]
    fn texts_strtold_would_refuse_are_refused() {
        for text in [
            "", " 1", "1 ", "abc", "1e", "1e+", ".", "-", "nan", "NaN", "0x10", "1,5", "1e99999",
            "1e-99999", "1e-4951", "--1", "1.2.3",
        ] {
            assert_eq!(LongDouble::parse(text.as_bytes()), None, "{text:?}");
        }
        assert!(LongDouble::parse(&vec![b'1'; MAX_TEXT_BYTES]).is_none());
        assert!(LongDouble::parse(b"0e99999").is_some());
    }

    #[test]
    fn infinities_and_overflow_are_not_finite() {
        assert_eq!(incr("inf", "1"), None);
        assert_eq!(incr("1", "-infinity"), None);
        assert_eq!(incr("1.1e4932", "1.1e4932"), None);
        assert!(LongDouble::parse(b"inf").is_some());
    }

    #[test]
    fn extremes_round_without_panicking() {
        let largest = incr("1.18973149535723176502e4932", "0").expect("finite");
        assert_eq!(largest.len(), 4933);
        let tiny = LongDouble::parse(b"4e-4951").expect("subnormal");
        assert!(matches!(
            tiny,
            LongDouble::Finite {
                exponent: MIN_EXPONENT,
                significand: 1,
                ..
            }
        ));
        assert_eq!(tiny.to_redis_text().as_deref(), Some("0"));
    }
}
