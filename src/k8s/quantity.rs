//! Kubernetes resource quantities (`500m`, `1.5Gi`, `1e3`) as exact numbers.
//!
//! Owns parsing the quantity syntax the API server accepts (decimal SI
//! suffixes `n u m k M G T P E`, binary suffixes `Ki … Ei`, decimal
//! exponents `e3`/`E-2`) into a fixed-point value with milli precision,
//! rounded up like the API server does. Used by validation (requests ≤
//! limits) and by conversion (CPU shares/quota, memory bytes). It does not
//! know which resource a quantity belongs to.

use std::fmt;

/// The regular expression the API server quotes for malformed quantities.
pub const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A malformed or out-of-range quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(pub String);

/// A parsed quantity, held in thousandths of its unit (rounded up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity {
    milli: i128,
}

impl Quantity {
    /// Parses a quantity string.
    ///
    /// Fails when the text does not follow the Kubernetes quantity syntax or
    /// the value does not fit in 128 bits of thousandths.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let syntax = || QuantityError(QUANTITY_SYNTAX.to_string());
        let s = text.trim();
        if s.is_empty() {
            return Err(syntax());
        }
        let (negative, rest) = match s.as_bytes()[0] {
            b'+' => (false, &s[1..]),
            b'-' => (true, &s[1..]),
            _ => (false, s),
        };
        let number_len = rest
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_len);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
            return Err(syntax());
        }
        let (decimal_exp, binary_pow) = parse_suffix(suffix).ok_or_else(syntax)?;

        let too_large = || QuantityError(format!("quantity {text:?} is too large"));
        // Mantissa: all digits, with `frac_len` of them after the point.
        // Trailing fractional zeros carry no value; dropping them keeps the
        // mantissa small.
        let frac_trimmed = frac_part.trim_end_matches('0');
        let digits = format!("{}{}", int_part.trim_start_matches('0'), frac_trimmed);
        let digits = digits.trim_start_matches('0');
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| too_large())?
        };
        let frac_len = i64::try_from(frac_trimmed.len()).map_err(|_| too_large())?;
        // value * 1000 = mantissa * 2^(10*binary_pow) * 10^(decimal_exp + 3 - frac_len)
        let exp10 = i64::from(decimal_exp) + 3 - frac_len;
        let mut numerator = mantissa;
        for _ in 0..binary_pow {
            numerator = numerator.checked_mul(1024).ok_or_else(too_large)?;
        }
        let milli = if exp10 >= 0 {
            let scale = pow10(exp10).ok_or_else(too_large)?;
            numerator.checked_mul(scale).ok_or_else(too_large)?
        } else {
            match pow10(-exp10) {
                Some(den) => ceil_div(numerator, den),
                // Far below a thousandth: rounds up to the smallest unit.
                None => i128::from(numerator > 0),
            }
        };
        Ok(Quantity {
            milli: if negative { -milli } else { milli },
        })
    }

    /// Thousandths of the unit (millicores for CPU), rounded up, saturating.
    pub fn milli_value(&self) -> i64 {
        saturate(self.milli)
    }

    /// Whole units (bytes for memory), rounded up, saturating.
    pub fn value(&self) -> i64 {
        saturate(ceil_div(self.milli, 1000))
    }

    pub fn is_negative(&self) -> bool {
        self.milli < 0
    }

    pub fn is_zero(&self) -> bool {
        self.milli == 0
    }
}

impl fmt::Display for Quantity {
    /// A plain decimal rendering (`1.5`, `250m` shown as `0.25`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.milli < 0 { "-" } else { "" };
        let abs = self.milli.unsigned_abs();
        let (units, frac) = (abs / 1000, abs % 1000);
        if frac == 0 {
            write!(f, "{sign}{units}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{sign}{units}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// `(decimal exponent, power of 1024)` of a suffix, `None` if unknown.
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let known = match suffix {
        "" => Some((0, 0)),
        "n" => Some((-9, 0)),
        "u" => Some((-6, 0)),
        "m" => Some((-3, 0)),
        "k" => Some((3, 0)),
        "M" => Some((6, 0)),
        "G" => Some((9, 0)),
        "T" => Some((12, 0)),
        "P" => Some((15, 0)),
        "E" => Some((18, 0)),
        "Ki" => Some((0, 1)),
        "Mi" => Some((0, 2)),
        "Gi" => Some((0, 3)),
        "Ti" => Some((0, 4)),
        "Pi" => Some((0, 5)),
        "Ei" => Some((0, 6)),
        _ => None,
    };
    if known.is_some() {
        return known;
    }
    let exp = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    exp.parse::<i32>()
        .ok()
        .filter(|e| e.abs() <= 1000)
        .map(|e| (e, 0))
}

fn pow10(exp: i64) -> Option<i128> {
    let exp = u32::try_from(exp).ok()?;
    10i128.checked_pow(exp)
}

/// Division rounding toward positive infinity (`den` > 0).
fn ceil_div(num: i128, den: i128) -> i128 {
    let q = num / den;
    if num % den > 0 {
        q + 1
    } else {
        q
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(s: &str) -> i64 {
        Quantity::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .milli_value()
    }
    fn bytes(s: &str) -> i64 {
        Quantity::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .value()
    }

    #[test]
    fn cpu_quantities_convert_to_millicores() {
        assert_eq!(milli("1"), 1000);
        assert_eq!(milli("500m"), 500);
        assert_eq!(milli("0.5"), 500);
        assert_eq!(milli(".25"), 250);
        assert_eq!(milli("2."), 2000);
        assert_eq!(milli("+1.5"), 1500);
        assert_eq!(milli("100u"), 1);
        assert_eq!(milli("0"), 0);
    }

    #[test]
    fn memory_quantities_convert_to_bytes() {
        assert_eq!(bytes("128Mi"), 128 * 1024 * 1024);
        assert_eq!(bytes("1Gi"), 1 << 30);
        assert_eq!(bytes("1.5Gi"), 3 << 29);
        assert_eq!(bytes("1k"), 1000);
        assert_eq!(bytes("64M"), 64_000_000);
        assert_eq!(bytes("2Ki"), 2048);
        assert_eq!(bytes("1Ei"), 1 << 60);
    }

    #[test]
    fn exponents_are_decimal_powers() {
        assert_eq!(bytes("1e3"), 1000);
        assert_eq!(bytes("1E3"), 1000);
        assert_eq!(bytes("12e+2"), 1200);
        assert_eq!(milli("5e-1"), 500);
        assert_eq!(bytes("1E"), 1_000_000_000_000_000_000);
    }

    #[test]
    fn fractions_are_rounded_up() {
        assert_eq!(milli("0.1m"), 1);
        assert_eq!(milli("1n"), 1);
        assert_eq!(bytes("1.5"), 2);
        assert_eq!(bytes("100m"), 1);
        assert_eq!(milli("1e-40"), 1);
    }

    #[test]
    fn negative_quantities_parse_and_are_negative() {
        let q = Quantity::parse("-1").expect("parses");
        assert!(q.is_negative());
        assert_eq!(q.milli_value(), -1000);
    }

    #[test]
    fn malformed_quantities_are_rejected_with_the_api_server_message() {
        for bad in [
            "", "abc", "1x", "1.2.3", ".", "Mi", "1 Gi", "1e", "1Gi1", "--1", "1mi",
        ] {
            let err = Quantity::parse(bad).expect_err(bad);
            assert_eq!(err.0, QUANTITY_SYNTAX, "{bad}");
        }
    }

    #[test]
    fn absurdly_large_quantities_are_an_error_not_a_panic() {
        assert!(Quantity::parse("1e900").is_err());
        assert!(Quantity::parse("99999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn quantities_compare_across_suffixes() {
        let a = Quantity::parse("1").expect("1");
        let b = Quantity::parse("1000m").expect("1000m");
        let c = Quantity::parse("1001m").expect("1001m");
        assert_eq!(a, b);
        assert!(c > a);
        assert!(Quantity::parse("1Gi").expect("Gi") > Quantity::parse("1G").expect("G"));
    }

    #[test]
    fn display_is_plain_decimal() {
        assert_eq!(Quantity::parse("1500m").expect("q").to_string(), "1.5");
        assert_eq!(Quantity::parse("2").expect("q").to_string(), "2");
        assert_eq!(Quantity::parse("-250m").expect("q").to_string(), "-0.25");
    }
}
