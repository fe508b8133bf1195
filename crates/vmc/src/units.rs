//! Parsing of Docker-style sizes such as `64m`, `1g`, `512k`.

/// Parses a size with an optional unit suffix (b, k, m, g, t; an optional trailing `b`/`ib`,
/// any case) into bytes. Units are binary, as Docker's are: `1k` = 1024 bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected a number with an optional unit b, k, m, g (e.g. 64m)"))?;
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {unit:?} (use b, k, m or g, e.g. 64m)"
            ))
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// Formats a byte count the way `docker images` does (`4.2MB`, decimal units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_sizes() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100b"), Ok(100));
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(parse_size("").is_err());
        assert!(parse_size("m").is_err());
        assert!(parse_size("12x").is_err());
        assert!(parse_size("99999999999t").is_err());
    }

    #[test]
    fn formats_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_200_000), "4.2MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}
