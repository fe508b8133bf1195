//! Parsing of Docker-style sizes such as `64m`, `1g`, `512k`.

/// Parses a size with an optional unit suffix (b, k, m, g, t; an optional trailing `b`/`ib`,
/// any case) into bytes. Units are binary, as Docker's are: `1k` = 1024 bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| {
        format!(
            "invalid size {text:?}: expected a number with an optional unit b, k, m, g (e.g. 64m)"
        )
    })?;
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

/// Formats a byte count in decimal units with 3 significant digits, as `docker images` does
/// (`4.20MB`, `512B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    format!("{value:.decimals$}{}", UNITS[unit])
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An age in seconds as Docker words it in CREATED and `Exited (N) … ago`: its
/// [`human_duration`] and "ago" ("5 seconds ago", "About a minute ago", "3 hours ago").
pub fn ago(seconds: i64) -> String {
    format!("{} ago", human_duration(seconds))
}

/// A duration in seconds as Docker words it (go-units' `HumanDuration`) in `Up …` and, with
/// "ago", in ages: "Less than a second", "3 seconds", "About a minute", "5 minutes", "About an
/// hour", "3 hours", "2 days", …
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (minutes, hours) = (s / 60, (s as f64 / 3600.0).round() as i64);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
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
        assert_eq!(human_size(4_200_000), "4.20MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(ago(3 * 3600 + 5), "3 hours ago");
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(61), "About a minute ago");
        assert_eq!(ago(20 * 86_400), "2 weeks ago");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
    }
}
