//! The report as aligned plain-text tables for a terminal.

use super::firecracker;
use super::{format_bytes, format_ms, BenchReport, PhaseKind};
use crate::Phase;
use std::fmt::Write;
use vmc_runtime::Mode;

/// Renders the header, the per-phase timing table, the memory table and the Firecracker
/// comparison.
pub fn render(report: &BenchReport) -> String {
    let mut out = String::new();
    let s = &report.settings;
    let _ = writeln!(
        out,
        "vmc bench {}: {} measured runs per mode after {} warm-up; {}",
        s.image,
        s.runs,
        s.warmup,
        report.schedule()
    );
    let h = &report.host;
    let _ = writeln!(
        out,
        "host: {}, {} × {}, {} RAM, cgroup {}, KVM: {}",
        h.kernel,
        h.cpu_count,
        h.cpu_model,
        format_bytes(h.memory_bytes),
        h.cgroup.describe(),
        h.kvm.detail
    );
    for mode in &report.modes {
        if let Some(host) = &mode.ran_on {
            let _ = writeln!(
                out,
                "{} mode ran elsewhere: {}, {} × {}, KVM: {}",
                mode.mode.as_str(),
                host.kernel,
                host.cpu_count,
                host.cpu_model,
                host.kvm.detail
            );
        }
    }
    out.push('\n');
    out += &align(&timing_rows(report), &TIMING_RIGHT_ALIGNED);
    if report.modes.iter().any(|m| m.memory.is_some()) {
        out.push('\n');
        let rows = memory_rows(report);
        let right: Vec<bool> = (0..rows[0].len()).map(|col| col > 0).collect();
        out += &align(&rows, &right);
    }
    if report.mode(Mode::Vm).is_some() {
        out.push('\n');
        out += &comparison_lines(report);
    }
    out
}

/// The Firecracker comparison as one line per figure (its verdicts are too long for a table).
fn comparison_lines(report: &BenchReport) -> String {
    let mut out = String::from("vs Firecracker's published spec:\n");
    for line in firecracker::compare(report) {
        let _ = writeln!(
            out,
            "  {}: vmc {}; Firecracker {} → {}",
            line.what,
            line.measured,
            line.published,
            line.verdict.describe()
        );
    }
    out
}

/// Which columns of [`timing_rows`] hold numbers.
pub(crate) const TIMING_RIGHT_ALIGNED: [bool; 7] = [false, false, true, true, true, true, true];

/// A header, then rows of phases, one line per mode, with median / p95 / min / max in
/// milliseconds and the number of runs.
pub(crate) fn timing_rows(report: &BenchReport) -> Vec<Vec<String>> {
    let mut phases: Vec<(Phase, PhaseKind, String)> = Vec::new();
    for mode in &report.modes {
        for stat in &mode.phase_stats {
            if !phases
                .iter()
                .any(|(p, k, _)| *p == stat.phase && *k == stat.kind)
            {
                phases.push((stat.phase, stat.kind, stat.label.clone()));
            }
        }
    }
    phases.sort_by_key(|(phase, kind, _)| display_order(*phase, *kind));
    let mut rows = vec![vec![
        "phase (ms)".to_string(),
        "mode".into(),
        "median".into(),
        "p95".into(),
        "min".into(),
        "max".into(),
        "runs".into(),
    ]];
    for (phase, kind, label) in &phases {
        let mut first = true;
        for mode in &report.modes {
            let Some(stats) = mode.stats_of(*phase, *kind).map(|s| &s.ms) else {
                continue;
            };
            rows.push(vec![
                if first { label.clone() } else { String::new() },
                mode.mode.as_str().into(),
                format_ms(stats.median),
                format_ms(stats.p95),
                format_ms(stats.min),
                format_ms(stats.max),
                stats.count.to_string(),
            ]);
            first = false;
        }
    }
    rows
}

/// Steps in milestone order (merged across modes: a VM's finer steps before the container's
/// coarser one ending at the same milestone), then the totals in [`Phase::TOTALS`] order.
fn display_order(phase: Phase, kind: PhaseKind) -> (bool, usize, usize) {
    let rank = |m| {
        crate::phases::MILESTONE_ORDER
            .iter()
            .position(|&x| x == m)
            .unwrap_or(usize::MAX)
    };
    match kind {
        PhaseKind::Step => (false, rank(phase.to), usize::MAX - rank(phase.from)),
        PhaseKind::Total => {
            let position = Phase::TOTALS.iter().position(|&p| p == phase);
            (true, position.unwrap_or(usize::MAX), 0)
        }
    }
}

/// A header, then one column per mode with the memory run's summary.
pub(crate) fn memory_rows(report: &BenchReport) -> Vec<Vec<String>> {
    let with_memory: Vec<_> = report
        .modes
        .iter()
        .filter_map(|m| m.memory.as_ref().map(|memory| (m.mode, memory)))
        .collect();
    let command = with_memory
        .first()
        .map(|(_, memory)| memory.command.join(" "))
        .unwrap_or_default();
    let mut header = vec![format!("memory ({command})")];
    header.extend(
        with_memory
            .iter()
            .map(|(mode, _)| mode.as_str().to_string()),
    );
    let line = |label: &str, pick: &dyn Fn(&super::MemorySummary) -> u64| {
        let mut row = vec![label.to_string()];
        row.extend(
            with_memory
                .iter()
                .map(|(_, m)| format_bytes(pick(&m.summary))),
        );
        row
    };
    let mut rows = vec![
        header,
        line("reserved up front", &|s| s.reserved_bytes),
        line("workload peak", &|s| s.peak_workload_bytes),
        line("workload at last sample", &|s| s.last_workload_bytes),
        line("runtime overhead (median)", &|s| s.overhead_median_bytes),
        line("runtime overhead (max)", &|s| s.overhead_max_bytes),
    ];
    let mut count = vec!["samples".to_string()];
    count.extend(
        with_memory
            .iter()
            .map(|(_, m)| m.summary.sample_count.to_string()),
    );
    rows.push(count);
    rows
}

/// A header, then the VM mode against each of Firecracker's published bounds.
pub(crate) fn comparison_rows(report: &BenchReport) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "vs Firecracker".to_string(),
        "published".into(),
        "vmc".into(),
        "verdict".into(),
    ]];
    for line in firecracker::compare(report) {
        rows.push(vec![
            line.what.into(),
            line.published.into(),
            line.measured,
            line.verdict.describe(),
        ]);
    }
    rows
}

/// Pads each column to its widest cell (right-aligned where `right` says so) and puts a
/// rule under the first row.
fn align(rows: &[Vec<String>], right: &[bool]) -> String {
    let columns = right.len();
    let width = |col: usize| {
        rows.iter()
            .map(|r| r.get(col).map_or(0, |c| c.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(col, cell)| {
                let pad = widths[col].saturating_sub(cell.chars().count());
                if right[col] {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (columns - 1);
            out += &"─".repeat(total);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn timing_rows_are_aligned_and_grouped_by_phase() {
        let text = render(&sample::report());
        let table: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("phase (ms)"))
            .take_while(|l| !l.is_empty())
            .collect();
        // Header, rule, 4 VM-only-or-shared steps ... every data line ends in the run count.
        let header_width = table[0].chars().count();
        for line in &table[2..] {
            assert_eq!(line.chars().count(), header_width, "{line:?}");
            assert!(line.ends_with('3'), "{line:?}");
        }
        let startup = table.iter().position(|l| l.starts_with("startup")).unwrap();
        assert!(table[startup].contains(" vm "));
        assert!(table[startup + 1].trim_start().starts_with("container"));
        // kernel entry appears for the VM only.
        let kernel = table
            .iter()
            .position(|l| l.starts_with("runtime ready → kernel entry"))
            .unwrap();
        assert!(table[kernel + 1].starts_with("kernel entry → init started"));
    }

    #[test]
    fn memory_and_comparison_tables_are_present() {
        let text = render(&sample::report());
        assert!(text.contains("memory (memory-cycle --mib 64 --hold 1)"));
        assert!(text.contains("reserved up front"));
        assert!(text.contains("128.0 MiB"));
        assert!(text.contains("vs Firecracker's published spec:\n  boot to init"));
        assert!(text.contains("→ not comparable: the VM ran on QEMU TCG"));
        assert!(text.starts_with(
            "vmc bench busybox: 3 measured runs per mode after 1 warm-up; vm and container runs interleaved\n"
        ));
        let mut containers_only = sample::report();
        containers_only.modes.retain(|m| m.mode == Mode::Container);
        assert!(!render(&containers_only).contains("Firecracker"));
    }
}
