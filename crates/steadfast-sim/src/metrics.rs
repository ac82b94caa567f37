//! What a simulation measured, a text summary, and SVG charts.

use core::fmt::Write as _;
use core::time::Duration;
use plotters::prelude::*;
use std::path::Path;

/// How long the fleet took to come back after one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// When the fault struck (virtual time from the start).
    pub at: Duration,
    /// Clients open just before it.
    pub target: u32,
    /// Time from the fault until as many clients were open again; `None` if
    /// that never happened within the simulation.
    pub after: Option<Duration>,
}

/// Message accounting over the whole fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageCounts {
    /// Accepted by `send`.
    pub sent: u64,
    /// Acknowledged (at least once).
    pub acked: u64,
    /// Distinct messages the server received.
    pub delivered: u64,
    /// Not delivered, and still held by clients when the simulation ended.
    pub pending: u64,
    /// Not delivered and no longer held: gone (dropped, expired, or written
    /// at most once into a connection that died).
    pub lost: u64,
    /// Receptions beyond the first of the same message (replays).
    pub duplicated: u64,
}

/// What the server's hub did to its sessions over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerCounts {
    /// Pings the hub sent to silent sessions.
    pub pings: u64,
    /// Sessions the hub reaped: silent past its detection bound.
    pub reaped: u64,
    /// Sessions replaced by a newer session of the same client.
    pub replaced: u64,
    /// Sessions the hub closed for a shutdown (a [`Fault::CloseAll`](crate::Fault::CloseAll)).
    pub shut_down: u64,
}

/// Everything measured; equal for equal scenarios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Width of each bucket (the scenario's, or wider if the run would
    /// otherwise need more than 4 Mi buckets).
    pub bucket: Duration,
    /// Clients open at the end of each bucket.
    pub connected: Vec<u32>,
    /// Connection attempts started in each bucket (the thundering herd).
    pub attempts: Vec<u32>,
    /// Handshakes the server accepted in each bucket.
    pub accepts: Vec<u32>,
    /// One entry per fault that struck within the run, in order.
    pub recoveries: Vec<Recovery>,
    /// Message accounting.
    pub messages: MessageCounts,
    /// What the server's hub did to its sessions.
    pub server: ServerCounts,
    /// Dead-peer detection latencies (partition start to heartbeat timeout), sorted.
    pub detection: Vec<Duration>,
    /// Clients that ended in `Failed`.
    pub failed_clients: u32,
    /// Simulation events processed: frames delivered, deadlines reached,
    /// application sends, fault edges. A deadline the client moved before
    /// it came is not an event.
    pub events: u64,
}

impl Metrics {
    /// Most handshakes the server accepted per second, over the buckets.
    pub fn peak_accept_rate(&self) -> f64 {
        let peak = self.accepts.iter().copied().max().unwrap_or(0);
        f64::from(peak) / self.bucket.as_secs_f64()
    }

    /// Most attempts started in one bucket.
    pub fn peak_attempts(&self) -> u32 {
        self.attempts.iter().copied().max().unwrap_or(0)
    }

    /// The `p`-th percentile (0..=100) of dead-peer detection latency.
    pub fn detection_percentile(&self, p: f64) -> Option<Duration> {
        if self.detection.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * (self.detection.len() - 1) as f64).round() as usize;
        self.detection
            .get(rank.min(self.detection.len() - 1))
            .copied()
    }

    /// A short, readable account.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "connections: peak {} open, {} at the end; {} clients failed",
            self.connected.iter().max().unwrap_or(&0),
            self.connected.last().unwrap_or(&0),
            self.failed_clients
        );
        let _ = writeln!(
            s,
            "attempts: {} in all, peak {} per {:?}; peak accept rate {:.0}/s",
            self.attempts.iter().map(|a| u64::from(*a)).sum::<u64>(),
            self.peak_attempts(),
            self.bucket,
            self.peak_accept_rate()
        );
        for r in &self.recoveries {
            let _ = match r.after {
                Some(after) => writeln!(
                    s,
                    "fault at {:?}: {} clients back after {:.1?}",
                    r.at, r.target, after
                ),
                None => writeln!(
                    s,
                    "fault at {:?}: never fully recovered ({} targeted)",
                    r.at, r.target
                ),
            };
        }
        let m = &self.messages;
        let _ = writeln!(
            s,
            "messages: sent {} acked {} delivered {} pending {} lost {} duplicated {}",
            m.sent, m.acked, m.delivered, m.pending, m.lost, m.duplicated
        );
        let h = &self.server;
        let _ = writeln!(
            s,
            "server: {} pings to silent sessions, {} reaped, {} replaced, {} closed for shutdown",
            h.pings, h.reaped, h.replaced, h.shut_down
        );
        if let (Some(p50), Some(p99), Some(max)) = (
            self.detection_percentile(50.0),
            self.detection_percentile(99.0),
            self.detection.last(),
        ) {
            let _ = writeln!(
                s,
                "dead-peer detection: {} samples, p50 {:.1?} p99 {:.1?} max {:.1?}",
                self.detection.len(),
                p50,
                p99,
                max
            );
        }
        let _ = writeln!(s, "simulated {} events", self.events);
        s
    }
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Legend text.
    pub label: &'a str,
    /// One value per bucket.
    pub values: &'a [u32],
}

/// Writes an SVG line chart of per-bucket values (e.g. reconnect attempts per
/// second, with and without jitter).
pub fn write_svg_chart(
    path: &Path,
    title: &str,
    bucket: Duration,
    y_label: &str,
    series: &[Series<'_>],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let buckets = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let x_max = (buckets as f64 * bucket.as_secs_f64()).max(1.0);
    let y_max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0u32..(y_max + y_max / 10 + 1))?;
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc(y_label)
        .draw()?;
    let colors = [RED, BLUE, GREEN, MAGENTA, BLACK];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let points = s
            .values
            .iter()
            .enumerate()
            .map(|(b, v)| (b as f64 * bucket.as_secs_f64(), *v));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
