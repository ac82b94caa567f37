//! `steadfast sim SCENARIO.toml`: a fleet scenario from a file, run by
//! steadfast-sim on its virtual clock; a summary table and an SVG chart.

mod file;
mod table;

use crate::duration::show;
use crate::exit::{Exit, Failure};
use file::{CompareFile, ScenarioFile, label, load};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use steadfast_sim::{Metrics, Scenario, Series, write_svg_chart};

/// Simulate a fleet of clients from a scenario file.
///
/// The file gives the clients and their configuration (table `config`, the
/// same settings as connect's flags), the server (`server`), the network
/// (`network`), faults on a timeline (`faults`, an array of tables), the
/// duration and the seed; see examples/scenarios/. The summary goes to stdout and is the same
/// for the same file.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,

    /// Write a chart (SVG) of the chosen series, one line per run.
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,

    /// Run this file's client configuration against the same scenario too,
    /// side by side (the file holds `name` and a `config` table only).
    #[arg(long, value_name = "OTHER.toml")]
    compare: Option<PathBuf>,

    /// What the chart shows, per time bucket.
    #[arg(long, value_enum, default_value = "attempts")]
    chart: ChartSeries,
}

/// A per-bucket series of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ChartSeries {
    /// Connection attempts started (the thundering herd).
    Attempts,
    /// Handshakes the server accepted.
    Accepts,
    /// Clients open.
    Connected,
}

impl ChartSeries {
    fn values(self, m: &Metrics) -> &[u32] {
        match self {
            ChartSeries::Attempts => &m.attempts,
            ChartSeries::Accepts => &m.accepts,
            ChartSeries::Connected => &m.connected,
        }
    }

    fn describe(self, bucket: Duration) -> String {
        let what = match self {
            ChartSeries::Attempts => "connection attempts",
            ChartSeries::Accepts => "handshakes accepted",
            ChartSeries::Connected => "clients open",
        };
        match self {
            ChartSeries::Connected => what.to_owned(),
            _ => format!("{what} per {}", show(bucket)),
        }
    }
}

/// Run the scenario (and its comparison), print the summary, write the chart.
pub(crate) fn run(args: SimArgs) -> Result<Exit, Failure> {
    let file: ScenarioFile = load(&args.scenario).map_err(Failure::usage)?;
    let mut runs = vec![(label(&file.name, &args.scenario), file.config.clone())];
    if let Some(path) = &args.compare {
        let other: CompareFile = load(path).map_err(Failure::usage)?;
        runs.push((label(&other.name, path), other.config));
    }
    let scenarios = runs
        .iter()
        .map(|(name, config)| {
            file.scenario(config)
                .map_err(|e| Failure::usage(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<Scenario>, Failure>>()?;

    eprintln!(
        "{} clients, {} of virtual time, seed {}",
        file.clients,
        show(file.duration()),
        file.seed.unwrap_or(0)
    );
    for fault in &file.faults {
        eprintln!("  fault {}", fault.describe());
    }
    let mut results = Vec::new();
    for ((name, _), scenario) in runs.iter().zip(&scenarios) {
        results.push(simulate(name, scenario, file.duration()));
    }

    let labels: Vec<String> = runs.iter().map(|(name, _)| name.clone()).collect();
    let metrics: Vec<&Metrics> = results.iter().collect();
    crate::say(table::summary(&labels, &metrics).trim_end());

    if let Some(path) = &args.svg {
        let bucket = results.first().map_or(Duration::from_secs(1), |m| m.bucket);
        let series: Vec<Series<'_>> = labels
            .iter()
            .zip(&results)
            .map(|(label, m)| Series {
                label,
                values: args.chart.values(m),
            })
            .collect();
        let title = format!("{} clients: {}", file.clients, labels.join(" vs "));
        write_svg_chart(path, &title, bucket, &args.chart.describe(bucket), &series).map_err(
            |e| {
                Failure::new(
                    Exit::Failure,
                    format!("cannot write {}: {e}", path.display()),
                )
            },
        )?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(Exit::Ok)
}

/// Run one scenario: on a terminal, with a progress bar in virtual time
/// (fed by the simulator's progress reports); every output gets one line
/// when it is done.
fn simulate(name: &str, scenario: &Scenario, duration: Duration) -> Metrics {
    let started = Instant::now();
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| virtual_time_bar(name, duration));
    let metrics = match &bar {
        Some(bar) => scenario.run_with_progress(|now, total| {
            bar.set_position(millis(now));
            bar.set_message(format!("{} / {}", show(now), show(total)));
        }),
        None => scenario.run(),
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "simulated {name}: {} of virtual time, {} events, in {}",
        show(duration),
        metrics.events,
        show(started.elapsed())
    );
    metrics
}

/// A bar over the run's virtual time, in milliseconds.
fn virtual_time_bar(name: &str, duration: Duration) -> ProgressBar {
    // Drawn only once it is set up.
    let bar = ProgressBar::with_draw_target(Some(millis(duration)), ProgressDrawTarget::hidden());
    // The bar takes the width the rest of the line leaves.
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{wide_bar}] {msg} virtual ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("simulating {name}"));
    bar.set_message(format!("{} / {}", show(Duration::ZERO), show(duration)));
    bar.set_draw_target(ProgressDrawTarget::stderr());
    // Redraw the elapsed time even while a slow stretch reports nothing.
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
