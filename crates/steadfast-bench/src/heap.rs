//! The live heap of the whole process, for `--features heap`: dhat's global
//! allocator sees every thread's allocations, so the count is exact on
//! async-std's and smol's executors too (their tasks allocate on the
//! executor's thread, not the caller's), and on blocking threads.
//!
//! Bytes are those requested from the allocator (`Layout::size`): malloc's
//! own few bytes per block are not in them. Only blocks allocated while a
//! [`Counter`] lives are counted.
//!
//! With `STEADFAST_BENCH_DHAT=<file>` in the environment, the counter also
//! writes dhat's per-call-site profile to that file when it is dropped
//! (viewable with DHAT's `dh_view.html`): where the bytes went, not only
//! how many.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The environment variable that names the file for dhat's profile.
const PROFILE_VAR: &str = "STEADFAST_BENCH_DHAT";

/// Counts the process's heap while it lives (one at a time in a process).
pub(crate) struct Counter {
    _profiler: dhat::Profiler,
}

impl Counter {
    /// Starts counting from zero: live bytes, peak and allocations.
    pub(crate) fn start() -> Counter {
        let builder = dhat::Profiler::builder();
        let builder = match std::env::var_os(PROFILE_VAR) {
            Some(file) => builder.file_name(file),
            // Testing mode: nothing written, nothing printed on drop.
            None => builder.testing(),
        };
        Counter {
            _profiler: builder.build(),
        }
    }

    /// Bytes allocated since the start and still live.
    pub(crate) fn live_bytes(&self) -> usize {
        dhat::HeapStats::get().curr_bytes
    }

    /// The most bytes live at once since the start.
    pub(crate) fn peak_bytes(&self) -> usize {
        dhat::HeapStats::get().max_bytes
    }

    /// Allocations since the start.
    pub(crate) fn allocations(&self) -> u64 {
        dhat::HeapStats::get().total_blocks
    }
}
