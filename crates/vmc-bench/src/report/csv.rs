//! `runs.csv` (one row per run per phase) and `memory.csv` (one row per memory sample).

use super::{BenchReport, PhaseKind};
use crate::BenchError;
use std::path::{Path, PathBuf};

/// The runs file's name.
pub const RUNS_FILE: &str = "runs.csv";
/// The memory file's name.
pub const MEMORY_FILE: &str = "memory.csv";
/// The runs file's header: `kind` is `step` or `total`; `from`/`to` are milestone names.
pub const RUNS_HEADER: [&str; 7] = [
    "mode",
    "run",
    "kind",
    "from",
    "to",
    "duration_us",
    "exit_code",
];
/// The memory file's header: times since vmc started; `peak_bytes` is empty where the
/// runtime has no recorded peak.
pub const MEMORY_HEADER: [&str; 6] = [
    "mode",
    "at_us",
    "reserved_bytes",
    "workload_bytes",
    "peak_bytes",
    "overhead_bytes",
];

/// Writes every phase of every measured run.
pub fn write_runs(report: &BenchReport, path: &Path) -> Result<PathBuf, BenchError> {
    let rows = report.modes.iter().flat_map(|mode| {
        mode.runs.iter().flat_map(move |run| {
            let steps = run.steps.iter().map(|d| (PhaseKind::Step, d));
            let totals = run.totals.iter().map(|d| (PhaseKind::Total, d));
            steps.chain(totals).map(move |(kind, duration)| {
                [
                    mode.mode.as_str().to_string(),
                    run.index.to_string(),
                    kind_name(kind).into(),
                    milestone_name(duration.phase.from),
                    milestone_name(duration.phase.to),
                    duration.duration.as_micros().to_string(),
                    run.exit_code.to_string(),
                ]
            })
        })
    });
    write_table(path, RUNS_HEADER, rows)
}

/// Writes every memory sample of every mode's memory run.
pub fn write_memory(report: &BenchReport, path: &Path) -> Result<PathBuf, BenchError> {
    let rows = report.modes.iter().flat_map(|mode| {
        let samples = mode.memory.iter().flat_map(|memory| &memory.samples);
        samples.map(move |sample| {
            let r = &sample.reading;
            [
                mode.mode.as_str().to_string(),
                sample.at.as_micros().to_string(),
                r.reserved_bytes.to_string(),
                r.workload_bytes.to_string(),
                r.peak_bytes.map(|p| p.to_string()).unwrap_or_default(),
                r.overhead_bytes.to_string(),
            ]
        })
    });
    write_table(path, MEMORY_HEADER, rows)
}

/// Writes `header` and `rows` as a CSV file at `path`.
fn write_table<const N: usize>(
    path: &Path,
    header: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) -> Result<PathBuf, BenchError> {
    let csv_error = |source| BenchError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_path(path).map_err(csv_error)?;
    writer.write_record(header).map_err(csv_error)?;
    for row in rows {
        writer.write_record(row).map_err(csv_error)?;
    }
    writer.flush().map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(path.to_path_buf())
}

fn kind_name(kind: PhaseKind) -> &'static str {
    match kind {
        PhaseKind::Step => "step",
        PhaseKind::Total => "total",
    }
}

/// The milestone's name as JSON spells it (`init_started`).
fn milestone_name(milestone: vmc_runtime::Milestone) -> String {
    serde_json::to_value(milestone)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn runs_csv_has_the_fixed_header_and_a_row_per_run_per_phase() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample::report();
        let path = write_runs(&report, &dir.path().join(RUNS_FILE)).unwrap();
        let mut reader = csv::Reader::from_path(path).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            &csv::StringRecord::from(RUNS_HEADER.to_vec())
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        // VM: 6 steps + 3 totals; container: 5 steps + 3 totals; 3 runs each.
        assert_eq!(rows.len(), 3 * 9 + 3 * 8);
        let boot = rows
            .iter()
            .find(|r| &r[0] == "vm" && &r[1] == "1" && &r[3] == "kernel_entry")
            .unwrap();
        assert_eq!(
            (&boot[2], &boot[4], &boot[5]),
            ("step", "init_started", "108600")
        );
        assert!(rows
            .iter()
            .any(|r| &r[0] == "container" && &r[2] == "total"));
    }

    #[test]
    fn memory_csv_has_one_row_per_sample() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample::report();
        let path = write_memory(&report, &dir.path().join(MEMORY_FILE)).unwrap();
        let mut reader = csv::Reader::from_path(path).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            &csv::StringRecord::from(MEMORY_HEADER.to_vec())
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 23 * 2);
        let vm_row = rows.iter().find(|r| &r[0] == "vm").unwrap();
        assert_eq!(&vm_row[4], "", "the VM has no recorded peak");
        let ctr_row = rows.iter().find(|r| &r[0] == "container").unwrap();
        assert_eq!(&ctr_row[4], (1u64 << 20).to_string());
    }
}
