//! `steadfast sim` on the example scenarios (examples/scenarios), with the
//! real binary: the summary, the chart, and a comparison.

mod support;

use std::path::{Path, PathBuf};
use support::run;

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// A fresh path in the temp dir for this test's output.
fn temp(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("steadfast-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_writes_an_svg_and_the_same_summary_every_time() {
    let svg = temp("restart.svg");
    let file = scenario("server-restart.toml");
    let first = run(&["sim", &file, "--svg", &svg.display().to_string()]).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    assert!(
        chart.starts_with("<svg"),
        "an SVG: {}",
        &chart[..80.min(chart.len())]
    );
    assert!(chart.contains("full jitter"), "the series is labelled");
    assert!(
        first
            .stderr
            .contains(&format!("chart written to {}", svg.display()))
    );
    let _ = std::fs::remove_file(&svg);

    let summary = first.stdout.join("\n");
    for row in [
        "herd size (peak attempts)",
        "peak accept rate",
        "recovery, fault at 1 min",
        "messages lost",
        "messages duplicated",
    ] {
        assert!(summary.contains(row), "no {row:?} in\n{summary}");
    }
    assert!(
        summary.contains("(2000 clients)"),
        "the fleet came back:\n{summary}"
    );

    let second = run(&["sim", &file]).await;
    assert_eq!(second.code, Some(0));
    assert_eq!(second.stdout, first.stdout, "same file, same summary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_puts_both_configurations_side_by_side_in_one_chart() {
    let svg = temp("compare.svg");
    let done = run(&[
        "sim",
        &scenario("server-restart.toml"),
        "--compare",
        &scenario("no-jitter.toml"),
        "--svg",
        &svg.display().to_string(),
    ])
    .await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    let _ = std::fs::remove_file(&svg);
    assert!(
        chart.contains("full jitter") && chart.contains("no jitter"),
        "both series"
    );
    let header = &done.stdout[0];
    assert!(
        header.contains("full jitter") && header.contains("no jitter"),
        "{header}"
    );
    // Without jitter the whole fleet comes back in one bucket.
    let herd = done
        .stdout
        .iter()
        .find(|l| l.starts_with("herd size"))
        .expect("herd row");
    assert!(herd.contains("2000 per 100 ms"), "{herd}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_scenario_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios");
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/scenarios") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        // Files with a fleet are scenarios; the others are --compare configs.
        if !text.lines().any(|l| l.starts_with("clients")) {
            continue;
        }
        let done = run(&["sim", &path.display().to_string()]).await;
        assert_eq!(done.code, Some(0), "{}: {}", path.display(), done.stderr);
        assert!(
            done.stdout.iter().any(|l| l.starts_with("clients failed")),
            "{}: {:?}",
            path.display(),
            done.stdout
        );
        ran += 1;
    }
    assert!(ran >= 3, "the example scenarios were found ({ran})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_scenario_file_exits_2_naming_the_problem() {
    let file = temp("bad.toml");
    std::fs::write(
        &file,
        "clients = 10\n[config.heartbeat]\ninterval = \"1s\"\npong_timeout = \"2s\"\n",
    )
    .expect("write");
    let done = run(&["sim", &file.display().to_string()]).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("heartbeat.pong_timeout: longer than heartbeat.interval"),
        "the core's own error: {}",
        done.stderr
    );

    std::fs::write(&file, "clients = 10\nclinets = 3\n").expect("write");
    let done = run(&["sim", &file.display().to_string()]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("clinets"), "{}", done.stderr);

    let done = run(&["sim", "/nonexistent/scenario.toml"]).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("cannot read"), "{}", done.stderr);
}
