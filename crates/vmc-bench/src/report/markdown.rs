//! `report.md`: the whole comparison for a person to read, with the two plots beside it.

use super::table::{comparison_rows, memory_rows, timing_rows, TIMING_RIGHT_ALIGNED};
use super::{csv, format_bytes, json, plots, write_file, BenchReport, MemoryRun};
use crate::{BenchError, HostFacts, KvmKind};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use vmc_runtime::Mode;

/// The Markdown report's file name.
pub const REPORT_FILE: &str = "report.md";

/// Writes the Markdown report.
pub fn write(report: &BenchReport, path: &Path) -> Result<PathBuf, BenchError> {
    write_file(path, render(report).as_bytes())
}

/// Renders the Markdown report.
pub fn render(report: &BenchReport) -> String {
    let mut md = String::new();
    let s = &report.settings;
    let modes: Vec<&str> = report.modes.iter().map(|m| m.mode.as_str()).collect();
    let _ = writeln!(
        md,
        "# vmc bench: `{}` as {}\n",
        s.image,
        modes.join(" and ")
    );
    let command = if s.command.is_empty() {
        "the image's default command".to_string()
    } else {
        format!("`{}`", s.command.join(" "))
    };
    let _ = writeln!(
        md,
        "Measured {} with vmc {}: {} runs per mode after {} warm-up run(s) ({}), each \
         running {command}. Memory: {}. CPUs: {}.\n",
        report.created,
        report.host.vmc_version,
        s.runs,
        s.warmup,
        report.schedule(),
        s.memory_bytes.map_or("vmc's default".into(), format_bytes),
        s.cpus.map_or("vmc's default".into(), |c| c.to_string()),
    );
    md += &kvm_note(report);
    md += &host_section(report);

    md += "## Startup\n\n";
    md += "Each phase is the time between two milestones of a run; all times are on one \
           monotonic host clock and count from vmc's start. `startup` is vmc start → workload \
           exec; `boot to init` is runtime ready → init started (for a VM, the span \
           Firecracker's boot time covers); `whole run` ends when everything is torn down. \
           METHODOLOGY.md says where each milestone is taken.\n\n";
    md += &markdown_table(&timing_rows(report), &TIMING_RIGHT_ALIGNED);
    md += "\n![Startup per mode and phase: median bar, p95 whisker, a dot per run](";
    md += plots::STARTUP_FILE;
    md += ")\n\n";

    md += "## Memory\n\n";
    if report.modes.iter().any(|m| m.memory.is_some()) {
        md += "One extra run per mode, sampled every ";
        let _ = write!(md, "{} ms", s.sample_interval_ms);
        md += ". For a VM, *reserved* is the guest RAM set aside at start, *workload* the part \
               of it resident on the host, *overhead* the VMM process's RSS minus that resident \
               guest RAM. For a container, nothing is reserved, *workload* is the cgroup's \
               charged usage and *overhead* the RSS of the supervising vmc process.\n\n";
        let rows = memory_rows(report);
        let right: Vec<bool> = (0..rows[0].len()).map(|col| col > 0).collect();
        md += &markdown_table(&rows, &right);
        md.push('\n');
        for mode in &report.modes {
            if let Some(memory) = &mode.memory {
                md += &memory_reading(mode.mode, memory);
            }
        }
        md += "\n![Memory over time per mode, aligned at workload exec](";
        md += plots::MEMORY_FILE;
        md += ")\n\n";
    } else {
        md += "No memory run was made (`vmc bench --memory-scenario` makes one per mode).\n\n";
    }

    if report.mode(Mode::Vm).is_some() {
        md += &firecracker_section(report);
    }
    md += "## Files\n\n";
    for (file, what) in [
        (json::REPORT_FILE, "everything above, machine-readable"),
        (json::SCHEMA_FILE, "the JSON Schema of report.json"),
        (csv::RUNS_FILE, "one row per measured run per phase (µs)"),
        (csv::MEMORY_FILE, "one row per memory sample (bytes)"),
        (plots::STARTUP_FILE, "the startup plot"),
        (plots::MEMORY_FILE, "the memory plot"),
    ] {
        let _ = writeln!(md, "- `{file}`: {what}");
    }
    md
}

/// The VM mode against Firecracker's published bounds.
fn firecracker_section(report: &BenchReport) -> String {
    let mut md = String::from("## Against Firecracker's published figures\n\n");
    md += "Firecracker's SPECIFICATION.md promises at most 125 ms from the InstanceStart API \
           call to the guest's /sbin/init (minimal kernel, serial console off) and at most \
           5 MiB of VMM memory overhead (1 vCPU, 128 MiB guest). The boot figure is judged on \
           the p95 of the runs, the overhead on the memory run's median. vmc's VMM is the \
           `vmc bench` process itself, so its overhead is an upper bound of a plain `vmc run`'s.\n\n";
    md += &markdown_table(&comparison_rows(report), &[false; 4]);
    md.push('\n');
    md
}

/// A warning at the top when the VM numbers cannot be taken at face value.
fn kvm_note(report: &BenchReport) -> String {
    let Some(vm_host) = report.host_of(Mode::Vm) else {
        return String::new();
    };
    let detail = &vm_host.kvm.detail;
    match vm_host.kvm.kind {
        KvmKind::Hardware => String::new(),
        KvmKind::Nested => format!(
            "> **The VM mode ran on nested KVM ({detail}).** Every VM exit goes through two \
             hypervisors, so VM times are higher than on bare metal.\n\n"
        ),
        KvmKind::Emulated => format!(
            "> **The VM mode ran on emulated KVM ({detail}).** The guest's instructions were \
             emulated in software, so VM boot times measure the emulator and are not \
             comparable with Firecracker's or with the container's times on real hardware. \
             Memory figures (resident pages, VMM overhead) are not affected.\n\n"
        ),
        KvmKind::Unavailable => format!(
            "> **No usable KVM ({detail}).** VM figures in this report are not meaningful.\n\n"
        ),
    }
}

/// The host facts as a table: one column for the report's host, one more per mode that
/// ran on another machine.
fn host_section(report: &BenchReport) -> String {
    let mut hosts = vec![("host".to_string(), &report.host)];
    for mode in &report.modes {
        if let Some(host) = &mode.ran_on {
            hosts.push((format!("{} mode ran on", mode.mode.as_str()), host));
        }
    }
    let row = |label: &str, fact: &dyn Fn(&HostFacts) -> String| {
        let mut row = vec![label.to_string()];
        row.extend(hosts.iter().map(|(_, h)| fact(h)));
        row
    };
    let mut header = vec![String::new()];
    header.extend(hosts.iter().map(|(name, _)| name.clone()));
    let rows = vec![
        header,
        row("kernel", &|h| h.kernel.clone()),
        row("CPU", &|h| format!("{} × {}", h.cpu_count, h.cpu_model)),
        row("memory", &|h| format_bytes(h.memory_bytes)),
        row("KVM", &|h| h.kvm.detail.clone()),
        row("cgroups", &|h| h.cgroup.describe().into()),
        row("vmc", &|h| h.vmc_version.clone()),
    ];
    let right = vec![false; rows[0].len()];
    format!("{}\n", markdown_table(&rows, &right))
}

/// One sentence on what the memory run shows, from its numbers.
fn memory_reading(mode: Mode, memory: &MemoryRun) -> String {
    let s = &memory.summary;
    if s.sample_count == 0 || s.peak_workload_bytes == 0 {
        return format!(
            "- {}: the runtime offered no memory readings.\n",
            mode.as_str()
        );
    }
    let retained = s.last_workload_bytes as f64 / s.peak_workload_bytes as f64 * 100.0;
    let what = match mode {
        Mode::Vm => "resident guest RAM",
        Mode::Container => "the cgroup's usage",
    };
    format!(
        "- {}: {what} peaked at {} and was {} ({retained:.0} % of the peak) at the last sample \
         before the workload exited.\n",
        mode.as_str(),
        format_bytes(s.peak_workload_bytes),
        format_bytes(s.last_workload_bytes),
    )
}

/// A GitHub-flavoured Markdown table; the first row is the header.
fn markdown_table(rows: &[Vec<String>], right: &[bool]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<&str> = (0..row.len())
                .map(|col| {
                    if right.get(col) == Some(&true) {
                        "---:"
                    } else {
                        "---"
                    }
                })
                .collect();
            let _ = writeln!(out, "|{}|", rule.join("|"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn report_has_every_section_and_links_the_plots() {
        let md = render(&sample::report());
        for needle in [
            "# vmc bench: `busybox` as vm and container",
            "## Startup",
            "## Memory",
            "## Against Firecracker's published figures",
            "](startup.svg)",
            "](memory.svg)",
            "| phase (ms) | mode | median | p95 | min | max | runs |",
        ] {
            assert!(md.contains(needle), "missing {needle:?}");
        }
    }

    #[test]
    fn emulated_kvm_is_stated_up_front() {
        let md = render(&sample::report());
        let note = md
            .find("ran on emulated KVM (QEMU TCG inside scripts/kvm-sandbox)")
            .unwrap();
        assert!(note < md.find("## Startup").unwrap());
        let mut hardware = sample::report();
        hardware.host.kvm.kind = KvmKind::Hardware;
        assert!(!render(&hardware).contains("emulated"));
    }

    #[test]
    fn memory_sentences_come_from_the_numbers() {
        let md = render(&sample::report());
        assert!(md.contains(
            "- vm: resident guest RAM peaked at 70.0 MiB and was 70.0 MiB (100 % of the peak)"
        ));
        assert!(md.contains(
            "- container: the cgroup's usage peaked at 65.0 MiB and was 1.0 MiB (2 % of the peak)"
        ));
    }

    #[test]
    fn tables_have_a_rule_per_column() {
        let rows = vec![
            vec!["a".to_string(), "b".into()],
            vec!["x|y".into(), "1".into()],
        ];
        assert_eq!(
            markdown_table(&rows, &[false, true]),
            "| a | b |\n|---|---:|\n| x\\|y | 1 |\n"
        );
    }
}
