//! The guest kernel's command line.

use vmc_protocol::INIT_PATH;

/// The command line of a run: serial console, reset through the i8042 on reboot, reboot at
/// once on panic, our init, and no kernel chatter unless `console` (`--console`) is set.
pub fn cmdline(console: bool) -> String {
    let base = format!("console=ttyS0 reboot=k panic=-1 rdinit={INIT_PATH}");
    if console {
        base
    } else {
        format!("{base} quiet")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_flag_drops_quiet() {
        assert_eq!(
            cmdline(false),
            "console=ttyS0 reboot=k panic=-1 rdinit=/vmc/init quiet"
        );
        assert_eq!(
            cmdline(true),
            "console=ttyS0 reboot=k panic=-1 rdinit=/vmc/init"
        );
    }
}
