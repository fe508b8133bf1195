//! `vmc run --trace`: the run's timeline as an annotated list (or JSON for tools).

use anyhow::Result;
use clap::ValueEnum;
use std::time::Duration;
use vmc_runtime::text::escape;
use vmc_runtime::{Mode, Timeline};

/// How `--trace` prints the timeline.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TraceFormat {
    /// A readable list: each milestone and step with its time.
    Text,
    /// One JSON object with the milestones and steps (times in microseconds).
    Json,
}

/// Prints the timeline of a finished run on stderr.
pub fn print_trace(timeline: &Timeline, mode: Mode, format: TraceFormat) -> Result<()> {
    match format {
        TraceFormat::Json => {
            let json = serde_json::json!({
                "mode": mode,
                "milestones": timeline.marks(),
                "steps": timeline.steps(),
            });
            eprintln!("{}", vmc_runtime::text::to_json(&json)?);
        }
        TraceFormat::Text => eprint!("{}", render_text(timeline, mode)),
    }
    Ok(())
}

/// Renders milestones (upper case) and steps interleaved in time order, each with the time
/// since vmc started and the time since the previous line.
fn render_text(timeline: &Timeline, mode: Mode) -> String {
    let mut lines: Vec<(Duration, String)> = timeline
        .marks()
        .iter()
        .map(|m| (m.at, format!("== {}", m.milestone.label().to_uppercase())))
        .chain(
            timeline
                .steps()
                .iter()
                .map(|s| (s.at, format!("   {}", escape(&s.what)))),
        )
        .collect();
    lines.sort_by_key(|(at, _)| *at);
    let mut out = format!(
        "vmc run --mode {} timeline (ms since vmc started):\n",
        mode.as_str()
    );
    let mut previous = Duration::ZERO;
    for (at, text) in lines {
        let delta = at.saturating_sub(previous);
        out += &format!("{:>9.3}  (+{:>8.3})  {text}\n", ms(at), ms(delta));
        previous = at;
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use vmc_runtime::Milestone;

    #[test]
    fn text_trace_is_in_time_order() {
        let origin = Instant::now();
        let mut timeline = Timeline::starting_at(origin);
        timeline.mark_at(Milestone::WorkloadExec, origin + Duration::from_millis(3));
        timeline.step_at("pivot_root", origin + Duration::from_millis(2));
        let text = render_text(&timeline, Mode::Container);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with("== VMC START"));
        assert!(lines[2].ends_with("pivot_root"));
        assert!(lines[3].contains("(+   1.000)"));
        assert!(lines[3].ends_with("== WORKLOAD EXEC"));
    }
}
