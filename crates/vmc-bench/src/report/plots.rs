//! The report's two plots, as SVG drawn with plotters.
//!
//! `startup.svg`: one row per mode and startup phase (the startup total, then each step up to
//! workload exec): a bar to the median, a whisker to the p95 and a dot per run, on a log
//! scale because phases span microseconds to seconds.
//! `memory.svg`: the memory run of each mode over time, aligned at workload exec: the VM's
//! reserved guest RAM, resident guest RAM and VMM overhead; the container's cgroup usage and
//! supervisor RSS.

use super::{format_ms, write_file, BenchReport, ModeReport, PhaseKind};
use crate::{BenchError, Phase};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;
use std::path::{Path, PathBuf};
use vmc_runtime::Mode;

/// The startup plot's file name.
pub const STARTUP_FILE: &str = "startup.svg";
/// The memory plot's file name.
pub const MEMORY_FILE: &str = "memory.svg";

const WIDTH: u32 = 1000;
const FONT: &str = "sans-serif";
const MIB: f64 = 1024.0 * 1024.0;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult<T = ()> = Result<T, Box<dyn Error>>;

/// Writes the startup plot.
pub fn write_startup(report: &BenchReport, path: &Path) -> Result<PathBuf, BenchError> {
    let rows = startup_rows(report);
    let height = 110 + 36 * rows.len().max(1) as u32;
    let svg = render(height, |area| draw_startup(area, &rows)).map_err(|err| BenchError::Plot {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    write_file(path, svg.as_bytes())
}

/// Writes the memory plot.
pub fn write_memory(report: &BenchReport, path: &Path) -> Result<PathBuf, BenchError> {
    let lines = memory_lines(report);
    let svg = render(520, |area| draw_memory(area, &lines)).map_err(|err| BenchError::Plot {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    write_file(path, svg.as_bytes())
}

/// A mode's colour in every plot.
fn mode_color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Vm => RGBColor(31, 119, 180),
        Mode::Container => RGBColor(214, 39, 40),
    }
}

/// Draws on a white SVG canvas of the report's width and returns the SVG text.
fn render(height: u32, draw: impl FnOnce(&Area) -> DrawResult) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        area.fill(&WHITE)?;
        draw(&area)?;
        area.present()?;
    }
    Ok(svg)
}

/// Draws a one-line message where a plot has nothing to show.
fn draw_message(area: &Area, message: &str) -> DrawResult {
    area.draw(&Text::new(message, (20, 30), (FONT, 16).into_font()))?;
    Ok(())
}

/// One row of the startup plot.
struct StartupRow {
    label: String,
    color: RGBColor,
    median: f64,
    p95: f64,
    runs: Vec<f64>,
}

/// Per mode: the startup total, then each step up to workload exec.
fn startup_rows(report: &BenchReport) -> Vec<StartupRow> {
    let mut rows = Vec::new();
    for mode in &report.modes {
        let phases = mode
            .stats_of(Phase::STARTUP, PhaseKind::Total)
            .into_iter()
            .chain(mode.startup_steps());
        for stats in phases {
            rows.push(StartupRow {
                label: format!("{}: {}", mode.mode.as_str(), stats.label),
                color: mode_color(mode.mode),
                median: stats.ms.median,
                p95: stats.ms.p95,
                runs: run_durations_ms(mode, stats.phase, stats.kind),
            });
        }
    }
    rows
}

/// Every measured run's duration of `phase` as a step or total, in milliseconds.
fn run_durations_ms(mode: &ModeReport, phase: Phase, kind: PhaseKind) -> Vec<f64> {
    mode.runs
        .iter()
        .flat_map(|run| match kind {
            PhaseKind::Step => run.steps.iter(),
            PhaseKind::Total => run.totals.iter(),
        })
        .filter(|d| d.phase == phase)
        .map(|d| d.duration.as_secs_f64() * 1000.0)
        .collect()
}

fn draw_startup(area: &Area, rows: &[StartupRow]) -> DrawResult {
    if rows.is_empty() {
        return draw_message(area, "No run reached workload exec: no startup to plot.");
    }
    let values = || {
        rows.iter()
            .flat_map(|r| r.runs.iter().copied().chain([r.median, r.p95]))
    };
    let low = (values().fold(f64::INFINITY, f64::min) / 2.0).max(0.001);
    // Room on the right for each row's median and p95 label: about a third of the axis.
    let max = values().fold(0.0, f64::max).max(low * 10.0);
    let high = max * (max / low).powf(0.45).max(12.0);
    let n = rows.len();
    let label_of = |value: &SegmentValue<usize>| match value {
        SegmentValue::CenterOf(i) if *i < n => rows[n - 1 - i].label.clone(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Startup per mode and phase — bar: median, whisker: p95, dots: runs",
            (FONT, 18),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(300)
        // plotters treats an integer range as inclusive: 0..n-1 gives n segments.
        .build_cartesian_2d((low..high).log_scale(), (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&label_of)
        .x_label_formatter(&|ms| axis_ms(*ms))
        .x_desc("milliseconds since the phase began (log scale)")
        .label_style((FONT, 13))
        .draw()?;
    for (i, row) in rows.iter().enumerate() {
        let y = n - 1 - i;
        let center = || SegmentValue::CenterOf(y);
        let mut bar = Rectangle::new(
            [
                (low, SegmentValue::Exact(y)),
                (row.median, SegmentValue::Exact(y + 1)),
            ],
            row.color.mix(0.7).filled(),
        );
        bar.set_margin(7, 7, 0, 0);
        chart.draw_series([bar])?;
        let whisker = BLACK.stroke_width(2);
        chart.draw_series([PathElement::new(
            vec![(row.median, center()), (row.p95, center())],
            whisker,
        )])?;
        chart.draw_series([EmptyElement::at((row.p95, center()))
            + PathElement::new(vec![(0, -8), (0, 8)], whisker)])?;
        chart.draw_series(
            row.runs
                .iter()
                .map(|&ms| Circle::new((ms, center()), 3, BLACK.mix(0.55).filled())),
        )?;
        let right = row.runs.iter().copied().fold(row.p95, f64::max);
        let text = format!(
            "median {} · p95 {} ms",
            format_ms(row.median),
            format_ms(row.p95)
        );
        chart
            .draw_series([EmptyElement::at((right, center()))
                + Text::new(text, (10, -7), (FONT, 13).into_font())])?;
    }
    Ok(())
}

/// A log-axis tick in milliseconds without trailing zeros: "0.01", "1", "1000".
fn axis_ms(ms: f64) -> String {
    let text = format!("{ms:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One line of the memory plot.
struct MemoryLine {
    label: String,
    color: RGBColor,
    width: u32,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// The lines of each mode's memory run: seconds since workload exec against MiB.
fn memory_lines(report: &BenchReport) -> Vec<MemoryLine> {
    let mut lines = Vec::new();
    for mode in &report.modes {
        let Some(memory) = &mode.memory else { continue };
        if memory.samples.is_empty() {
            continue;
        }
        let origin = memory.workload_exec().unwrap_or_default().as_secs_f64();
        let series = |pick: fn(&vmc_runtime::MemoryReading) -> u64| -> Vec<(f64, f64)> {
            memory
                .samples
                .iter()
                .map(|s| {
                    let t = s.at.as_secs_f64() - origin;
                    (t, pick(&s.reading) as f64 / MIB)
                })
                .collect()
        };
        let color = mode_color(mode.mode);
        let line = |label: &str, width, dashed, points| MemoryLine {
            label: format!("{}: {label}", mode.mode.as_str()),
            color,
            width,
            dashed,
            points,
        };
        match mode.mode {
            Mode::Vm => {
                lines.push(line(
                    "reserved guest RAM",
                    2,
                    true,
                    series(|r| r.reserved_bytes),
                ));
                lines.push(line(
                    "resident guest RAM",
                    3,
                    false,
                    series(|r| r.workload_bytes),
                ));
                lines.push(line("VMM overhead", 1, false, series(|r| r.overhead_bytes)));
            }
            Mode::Container => {
                lines.push(line("cgroup usage", 3, false, series(|r| r.workload_bytes)));
                lines.push(line(
                    "supervisor RSS",
                    1,
                    false,
                    series(|r| r.overhead_bytes),
                ));
            }
        }
    }
    lines
}

fn draw_memory(area: &Area, lines: &[MemoryLine]) -> DrawResult {
    if lines.is_empty() {
        return draw_message(
            area,
            "No memory run in this report: run vmc bench with --memory-scenario.",
        );
    }
    let points = || lines.iter().flat_map(|l| l.points.iter().copied());
    let x_min = points().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = points().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let x_max = x_max.max(x_min + 0.001);
    let y_max = (points().map(|p| p.1).fold(0.0, f64::max) * 1.15).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Memory over time per mode (aligned at workload exec)",
            (FONT, 18),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since workload exec")
        .y_desc("MiB")
        .label_style((FONT, 13))
        .draw()?;
    chart
        .draw_series([PathElement::new(
            vec![(0.0, 0.0), (0.0, y_max)],
            BLACK.mix(0.3).stroke_width(1),
        )])?
        .label("workload exec")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.mix(0.3)));
    for line in lines {
        let color = if line.width == 1 {
            line.color.mix(0.6)
        } else {
            line.color.mix(1.0)
        };
        let style = ShapeStyle::from(color).stroke_width(line.width);
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(line.points.clone(), 8, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(line.points.clone(), style))?
        };
        drawn
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    /// Parses an SVG file (failing on malformed XML) and returns its text contents.
    fn svg_texts(path: &Path) -> Vec<String> {
        let svg = std::fs::read_to_string(path).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    }

    #[test]
    fn startup_plot_is_well_formed_svg_with_a_row_per_mode_and_phase() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample::report();
        let path = write_startup(&report, &dir.path().join(STARTUP_FILE)).unwrap();
        let texts = svg_texts(&path);
        for label in [
            "vm: startup",
            "vm: kernel entry → init started",
            "container: startup",
            "container: runtime ready → init started",
        ] {
            assert!(
                texts.iter().any(|t| t == label),
                "no {label:?} in {texts:?}"
            );
        }
        let svg = std::fs::read_to_string(&path).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let circles = doc
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count();
        // A dot per run per row: VM 1 + 4 rows, container 1 + 3 rows, 3 runs each.
        assert_eq!(circles, 3 * (5 + 4));
    }

    #[test]
    fn memory_plot_has_every_line_in_its_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_memory(&sample::report(), &dir.path().join(MEMORY_FILE)).unwrap();
        let texts = svg_texts(&path);
        for label in [
            "vm: reserved guest RAM",
            "vm: resident guest RAM",
            "vm: VMM overhead",
            "container: cgroup usage",
            "container: supervisor RSS",
        ] {
            assert!(
                texts.iter().any(|t| t == label),
                "no {label:?} in {texts:?}"
            );
        }
    }

    #[test]
    fn axis_ticks_drop_trailing_zeros() {
        assert_eq!(axis_ms(0.01), "0.01");
        assert_eq!(axis_ms(1.0), "1");
        assert_eq!(axis_ms(100000.0), "100000");
    }

    #[test]
    fn plots_without_data_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = sample::report();
        for mode in &mut report.modes {
            mode.memory = None;
        }
        let path = write_memory(&report, &dir.path().join(MEMORY_FILE)).unwrap();
        assert!(svg_texts(&path)
            .iter()
            .any(|t| t.starts_with("No memory run in this report")));
        report.modes.clear();
        let path = write_startup(&report, &dir.path().join(STARTUP_FILE)).unwrap();
        assert!(svg_texts(&path)
            .iter()
            .any(|t| t.starts_with("No run reached workload exec")));
    }
}
