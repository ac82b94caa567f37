//! A program using steadfast runs under valgrind. The clock reads
//! `CLOCK_BOOTTIME` through rustix, whose own vDSO lookup (its `linux_raw`
//! backend) reads memory valgrind does not map and crashes there; rustix's
//! `use-libc` backend goes through libc, which valgrind knows.
//!
//! The test runs itself again under `valgrind --tool=none`, on Linux (the
//! clock's only user of rustix). It is skipped (and says so) where
//! valgrind is not installed.
#![cfg(target_os = "linux")]

use std::process::Command;

/// Set in the child that valgrind runs.
const CHILD: &str = "STEADFAST_WIRE_VALGRIND_CHILD";

#[test]
fn the_clock_reads_the_system_clocks_under_valgrind() {
    if std::env::var_os(CHILD).is_some() {
        let clock = steadfast_wire::Clock::new(std::time::Instant::now);
        let before = clock.now();
        assert!(clock.now() >= before, "the clock never goes back");
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        #[allow(clippy::print_stderr, reason = "a skipped test says so")]
        {
            eprintln!("valgrind is not installed: skipped");
        }
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new("valgrind")
        .args(["-q", "--tool=none"])
        .arg(exe)
        .args([
            "--exact",
            "the_clock_reads_the_system_clocks_under_valgrind",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("valgrind runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the test failed under valgrind ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
