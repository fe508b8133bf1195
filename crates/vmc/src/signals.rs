//! Signal names as Docker users type them: `TERM`, `SIGKILL`, `usr1`, `9`.

use anyhow::{anyhow, Result};
use nix::sys::signal::Signal;
use std::str::FromStr;

/// The number of the signal named `text` (with or without `SIG`, any case) or numbered.
pub fn parse_signal(text: &str) -> Result<i32> {
    let text = text.trim();
    let signal = match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let upper = text.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&name).ok()
        }
    };
    signal.map(|s| s as i32).ok_or_else(|| {
        anyhow!("unknown signal {text:?}: give a name (TERM, SIGKILL, USR1) or a number (1-31)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_as_docker_takes_them() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("usr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }
}
