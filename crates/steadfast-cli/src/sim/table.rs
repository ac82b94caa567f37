//! The summary table of one or more runs of a scenario, side by side.

use crate::duration::show;
use steadfast_sim::Metrics;

/// Rows of `label  value [value]`, aligned.
pub(crate) fn summary(labels: &[String], runs: &[&Metrics]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = vec![("".into(), labels.to_vec())];
    let mut row = |name: &str, value: &dyn Fn(&Metrics) -> String| {
        rows.push((name.to_owned(), runs.iter().map(|m| value(m)).collect()));
    };
    row("herd size (peak attempts)", &|m| {
        format!("{} per {}", m.peak_attempts(), show(m.bucket))
    });
    row("attempts in all", &|m| {
        m.attempts
            .iter()
            .map(|a| u64::from(*a))
            .sum::<u64>()
            .to_string()
    });
    row("peak accept rate", &|m| {
        format!("{:.0}/s", m.peak_accept_rate())
    });
    row("open at the end", &|m| {
        m.connected.last().copied().unwrap_or(0).to_string()
    });
    row("clients failed", &|m| m.failed_clients.to_string());
    let faults = runs.iter().map(|m| m.recoveries.len()).max().unwrap_or(0);
    for i in 0..faults {
        let name = match runs.first().and_then(|m| m.recoveries.get(i)) {
            Some(r) => format!("recovery, fault at {}", show(r.at)),
            None => format!("recovery, fault {}", i + 1),
        };
        row(&name, &|m| match m.recoveries.get(i) {
            Some(r) => match r.after {
                Some(after) => format!("{} ({} clients)", show(after), r.target),
                None => format!("never ({} clients)", r.target),
            },
            None => "-".into(),
        });
    }
    row("messages sent", &|m| m.messages.sent.to_string());
    row("messages lost", &|m| m.messages.lost.to_string());
    row("messages duplicated", &|m| {
        m.messages.duplicated.to_string()
    });
    row("messages pending", &|m| m.messages.pending.to_string());
    row("server: pinged / reaped / replaced / shut down", &|m| {
        let h = &m.server;
        format!(
            "{} / {} / {} / {}",
            h.pings, h.reaped, h.replaced, h.shut_down
        )
    });
    if runs.iter().any(|m| !m.detection.is_empty()) {
        row("dead-peer detection p50/p99", &|m| match (
            m.detection_percentile(50.0),
            m.detection_percentile(99.0),
        ) {
            (Some(p50), Some(p99)) => format!("{} / {}", show(p50), show(p99)),
            _ => "-".into(),
        });
    }
    align(&rows)
}

fn align(rows: &[(String, Vec<String>)]) -> String {
    let name_width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let columns = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|(_, v)| v.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (name, values) in rows {
        let mut line = format!("{name:<name_width$}");
        for (value, width) in values.iter().zip(&widths) {
            line.push_str(&format!("  {value:<width$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let rows = vec![
            ("".into(), vec!["a".into(), "b".into()]),
            ("long name".into(), vec!["12345".into(), "6".into()]),
        ];
        assert_eq!(align(&rows), "           a      b\nlong name  12345  6\n");
    }
}
