//! `vmc bench`: run one image as a microVM and as a container, alternately, and report how
//! long each phase took and how much memory each mode held (see METHODOLOGY.md).

use crate::commands::run::{build_spec, ModeArg, RunArgs};
use crate::modes::{runtime_for, ModeOptions};
use crate::units::parse_size;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;
use vmc_bench::report::{table, BenchSettings, MemoryRun, ModeReport, RunRecord, SCHEMA_ID};
use vmc_bench::{hypervisor_signature, phases, BenchReport, HostFacts, KvmFacts, KvmKind};
use vmc_bench::{MemorySample, MemorySampler};
use vmc_runs::{new_run_id, RunStore};
use vmc_runtime::{ExitOutcome, Mode, NoObserver, RunObserver, Timeline};
use vmc_vm::probe::{KvmAccess, Verdict};

/// The image the memory scenario runs (scripts/make-default-images.sh builds it).
const WORKLOAD_IMAGE: &str = "vmc-workload";
/// How long the memory scenario holds its allocation, and then holds after freeing it.
const SCENARIO_HOLD_SECONDS: &str = "1";

/// Options of `vmc bench`.
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct BenchArgs {
    /// Modes to compare, comma-separated; the runs alternate between them in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "vm,container"
    )]
    pub modes: Vec<ModeArg>,
    /// Measured runs per mode.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub runs: usize,
    /// Unmeasured warm-up runs per mode before the measured ones (they fill the caches).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub warmup: usize,
    /// Memory: the cgroup limit (container) or the guest RAM (VM; default 256m).
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// CPUs: the CPU quota (container) or the number of vCPUs (VM; default 1).
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// Directory for the report files [default: ./vmc-bench-<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also make one memory run per mode: the vmc-workload image allocates and touches
    /// --scenario-mib MiB, holds it 1 s, frees it and holds 1 s, sampled every 10 ms.
    #[arg(long)]
    pub memory_scenario: bool,
    /// MiB the memory scenario allocates.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub scenario_mib: u64,
    /// Add the modes of another `vmc bench` report of the same image and command (its
    /// report.json), e.g. VM runs made inside scripts/kvm-sandbox; the report says where
    /// each mode ran.
    #[arg(long, value_name = "REPORT_JSON")]
    pub add_report: Option<PathBuf>,
    #[command(flatten)]
    pub mode_options: ModeOptions,
    /// The image to benchmark: name[:tag] or an image id prefix.
    pub image: String,
    /// The command to run in it (default: the image's Cmd), e.g. `-- /bin/true`.
    pub command: Vec<String>,
}

/// Runs `vmc bench`: prints the table and writes the report directory.
pub fn bench(args: BenchArgs) -> Result<u8> {
    let modes = distinct_modes(&args.modes)?;
    if args.runs == 0 {
        bail!("--runs 0 measures nothing: give at least 1");
    }
    let added = args.add_report.as_deref().map(read_report).transpose()?;
    let (kvm, vm_blocker) = kvm_facts();
    if let (true, Some(why)) = (modes.iter().any(|(m, _)| *m == Mode::Vm), vm_blocker) {
        bail!("VM mode cannot run on this host: {why} (bench/compare.sh runs the comparison inside scripts/kvm-sandbox; or pass --modes container)");
    }
    let bencher = Bencher {
        store: vmc_image::Store::open_default()?,
        runs: RunStore::open()?,
        args: &args,
    };
    bencher.store.resolve(&args.image)?;
    let scenario = args
        .memory_scenario
        .then(|| scenario_command(args.scenario_mib));
    if scenario.is_some() {
        bencher.store.resolve(WORKLOAD_IMAGE).map_err(|err| {
            anyhow!("--memory-scenario runs the {WORKLOAD_IMAGE} image, which is missing ({err}): create it with scripts/make-default-images.sh")
        })?;
    }
    let out = args.out.clone().unwrap_or_else(default_out_dir);

    let per_mode = args.warmup + args.runs + usize::from(scenario.is_some());
    let progress = progress_bar((per_mode * modes.len()) as u64);
    for round in 1..=args.warmup {
        for &(mode, arg) in &modes {
            progress.set_message(format!("warm-up {round}/{} {}", args.warmup, mode.as_str()));
            bencher.measure(arg, &args.image, &args.command, &NoObserver, Instant::now())?;
            progress.inc(1);
        }
    }
    let mut measured: Vec<Vec<RunRecord>> = vec![Vec::new(); modes.len()];
    for round in 1..=args.runs {
        for (index, &(mode, arg)) in modes.iter().enumerate() {
            progress.set_message(format!("run {round}/{} {}", args.runs, mode.as_str()));
            let timeline =
                bencher.measure(arg, &args.image, &args.command, &NoObserver, Instant::now())?;
            measured[index].push(RunRecord::new(round, 0, timeline.marks()));
            progress.inc(1);
        }
    }
    let mut memory_runs: Vec<Option<MemoryRun>> = vec![None; modes.len()];
    if let Some(command) = &scenario {
        for (index, &(mode, arg)) in modes.iter().enumerate() {
            progress.set_message(format!("memory scenario {}", mode.as_str()));
            let (timeline, samples) = bencher.sample_memory(arg, command)?;
            memory_runs[index] = Some(MemoryRun::new(
                command.clone(),
                0,
                timeline.marks(),
                samples,
            ));
            progress.inc(1);
        }
    }
    progress.finish_and_clear();

    let mut report = BenchReport {
        schema: SCHEMA_ID.into(),
        created: vmc_image::timefmt::now_rfc3339(),
        settings: BenchSettings {
            image: args.image.clone(),
            command: args.command.clone(),
            runs: args.runs,
            warmup: args.warmup,
            memory_bytes: args.memory,
            cpus: args.cpus,
            sample_interval_ms: MemorySampler::DEFAULT_INTERVAL.as_millis() as u64,
        },
        host: HostFacts::collect(kvm, env!("CARGO_PKG_VERSION")),
        modes: modes
            .iter()
            .zip(measured.into_iter().zip(memory_runs))
            .map(|(&(mode, _), (runs, memory))| ModeReport::new(mode, runs, memory))
            .collect(),
    };
    if let Some(added) = added {
        report.add_modes_from(added)?;
    }
    print!("{}", table::render(&report));
    report.write_all(&out)?;
    println!(
        "\nreport: {} (with report.json, runs.csv, memory.csv, startup.svg, memory.svg)",
        out.join(vmc_bench::report::markdown::REPORT_FILE).display()
    );
    Ok(0)
}

/// What each run needs: the image store, the run directories, and the options.
struct Bencher<'a> {
    store: vmc_image::Store,
    runs: RunStore,
    args: &'a BenchArgs,
}

impl Bencher<'_> {
    /// Runs `command` in `image` once in `mode`, the way `vmc run --rm` does, on a timeline
    /// starting at `origin`; checks that the workload succeeded and the timeline is complete.
    fn measure(
        &self,
        mode: ModeArg,
        image: &str,
        command: &[String],
        observer: &dyn RunObserver,
        origin: Instant,
    ) -> Result<Timeline> {
        let mut timeline = Timeline::starting_at(origin);
        let resolved = self.store.resolve(image)?;
        let rootfs = self.store.rootfs(&resolved)?;
        let id = new_run_id()?;
        let run_args = self.run_args(mode, image, command);
        let spec = build_spec(&run_args, &resolved, rootfs, &id, self.runs.run_dir(&id))?;
        let runtime = runtime_for(mode.into(), &self.args.mode_options)?;
        let mode = Mode::from(mode);
        // Recorded like `vmc run --rm` does, so `vmc rm` can clean up after a crash.
        let record = vmc_runs::RunRecord::creating(&id[..12], mode, image, &spec);
        self.runs.save(&record)?;
        let result = runtime.run(&spec, &mut timeline, observer);
        let cleanup = runtime.cleanup(&id, &spec.run_dir);
        self.runs.remove(&id)?;
        let outcome = result.map_err(|err| anyhow!("the {} run failed: {err}", mode.as_str()))?;
        cleanup.map_err(|err| anyhow!("cleaning up after the {} run: {err}", mode.as_str()))?;
        if outcome != ExitOutcome::Exited(0) {
            bail!(
                "the {} run of {image} exited with status {}: vmc bench measures a workload that succeeds; check it with `vmc run --mode {} {image} {}`",
                mode.as_str(),
                outcome.exit_code(),
                mode.as_str(),
                command.join(" ")
            );
        }
        phases::validate(timeline.marks(), mode)?;
        Ok(timeline)
    }

    /// Runs the memory scenario once in `mode` with a memory sampler attached.
    fn sample_memory(
        &self,
        mode: ModeArg,
        command: &[String],
    ) -> Result<(Timeline, Vec<MemorySample>)> {
        let origin = Instant::now();
        let sampler = MemorySampler::new(origin);
        let measured = self.measure(mode, WORKLOAD_IMAGE, command, &sampler, origin);
        let samples = sampler
            .finish()
            .context("sampling the memory scenario's memory")?;
        Ok((measured?, samples))
    }

    /// The `vmc run` options equivalent to this benchmark's: `--rm`, no tty, no stdin,
    /// `--memory` and `--cpus` as given.
    fn run_args(&self, mode: ModeArg, image: &str, command: &[String]) -> RunArgs {
        RunArgs {
            mode,
            rm: true,
            memory: self.args.memory,
            cpus: self.args.cpus,
            mode_options: self.args.mode_options.clone(),
            workload: std::iter::once(image.to_string())
                .chain(command.iter().cloned())
                .collect(),
            ..RunArgs::default()
        }
    }
}

/// Reads the report.json of another benchmark.
fn read_report(path: &std::path::Path) -> Result<BenchReport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the report {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a vmc bench report.json: give the report.json a `vmc bench --out DIR` wrote",
            path.display()
        )
    })
}

/// The modes in the order given, each once.
fn distinct_modes(modes: &[ModeArg]) -> Result<Vec<(Mode, ModeArg)>> {
    let mut distinct: Vec<(Mode, ModeArg)> = Vec::new();
    for &arg in modes {
        let mode = Mode::from(arg);
        if distinct.iter().any(|(m, _)| *m == mode) {
            bail!("--modes lists {} twice: name each mode once", mode.as_str());
        }
        distinct.push((mode, arg));
    }
    if distinct.is_empty() {
        bail!("--modes is empty: give vm, container or vm,container");
    }
    Ok(distinct)
}

/// The memory-cycle arguments for the vmc-workload image's entrypoint.
fn scenario_command(mib: u64) -> Vec<String> {
    let mib = mib.to_string();
    [
        "memory-cycle",
        "--mib",
        &mib,
        "--hold",
        SCENARIO_HOLD_SECONDS,
    ]
    .map(String::from)
    .to_vec()
}

/// What kind of KVM this host has, and why VM mode cannot run here (if it cannot).
fn kvm_facts() -> (KvmFacts, Option<String>) {
    let probe = vmc_vm::probe::probe();
    let facts = |kind, detail: String| KvmFacts { kind, detail };
    match (probe.verdict, probe.access) {
        (Some(Verdict::Full), _) => (working_kvm(hypervisor_signature().as_deref()), None),
        (Some(verdict), _) => (
            facts(
                KvmKind::Unavailable,
                "nested KVM that cannot run Linux (probe failed)".into(),
            ),
            Some(verdict.message()),
        ),
        (None, KvmAccess::Unavailable(reason)) => (
            facts(KvmKind::Unavailable, format!("no usable KVM: {reason}")),
            Some(reason),
        ),
        (None, KvmAccess::Available { .. }) => (
            facts(KvmKind::Unavailable, "the KVM probe did not run".into()),
            Some("the KVM probe did not run".into()),
        ),
    }
}

/// A KVM that boots Linux, told apart by the hypervisor this machine runs under (its CPUID
/// signature): none (bare metal), QEMU's software emulation, or another hypervisor.
fn working_kvm(hypervisor: Option<&str>) -> KvmFacts {
    match hypervisor {
        None => KvmFacts {
            kind: KvmKind::Hardware,
            detail: "hardware KVM".into(),
        },
        Some("TCGTCGTCGTCG") => KvmFacts {
            kind: KvmKind::Emulated,
            detail: "QEMU TCG software emulation of a KVM host, as in scripts/kvm-sandbox".into(),
        },
        Some(signature) => KvmFacts {
            kind: KvmKind::Nested,
            detail: format!("nested KVM under a \"{signature}\" hypervisor"),
        },
    }
}

/// `./vmc-bench-YYYYMMDDTHHMMSSZ`.
fn default_out_dir() -> PathBuf {
    let stamp: String = vmc_image::timefmt::now_rfc3339()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    PathBuf::from(format!("vmc-bench-{stamp}"))
}

/// A bar over all runs on stderr; hidden when stderr is not a terminal (or a dumb one, such
/// as a serial line with no TERM).
fn progress_bar(total: u64) -> ProgressBar {
    let dumb = std::env::var("TERM").map_or(true, |term| term.is_empty() || term == "dumb");
    if dumb || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}  ({elapsed})")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_keep_their_order_and_appear_once() {
        let modes = distinct_modes(&[ModeArg::Container, ModeArg::Vm]).unwrap();
        let names: Vec<&str> = modes.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(names, ["container", "vm"]);
        let err = distinct_modes(&[ModeArg::Vm, ModeArg::Vm]).unwrap_err();
        assert!(err.to_string().contains("lists vm twice"), "{err}");
    }

    #[test]
    fn scenario_is_a_memory_cycle() {
        assert_eq!(
            scenario_command(32),
            ["memory-cycle", "--mib", "32", "--hold", "1"]
        );
    }

    #[test]
    fn kvm_kind_follows_the_hypervisor_signature() {
        assert_eq!(working_kvm(None).kind, KvmKind::Hardware);
        let tcg = working_kvm(Some("TCGTCGTCGTCG"));
        assert_eq!(tcg.kind, KvmKind::Emulated);
        assert!(tcg.detail.contains("QEMU TCG"));
        let nested = working_kvm(Some("KVMKVMKVM"));
        assert_eq!(nested.kind, KvmKind::Nested);
        assert!(nested.detail.contains("KVMKVMKVM"));
    }

    #[test]
    fn default_out_dir_is_stamped() {
        let dir = default_out_dir().display().to_string();
        assert!(dir.starts_with("vmc-bench-20"), "{dir}");
        assert!(dir.ends_with('Z') && !dir.contains(':'), "{dir}");
    }
}
