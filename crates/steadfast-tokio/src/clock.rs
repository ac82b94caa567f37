//! The core's timeline on tokio's clock, so `tokio::time::pause()` makes
//! tests instant.

use std::time::Duration;
use steadfast_core::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            origin: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.origin);
        Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn tokio_instant(&self, at: Instant) -> tokio::time::Instant {
        self.origin
            .checked_add(Duration::from_nanos(at.as_nanos()))
            .unwrap_or_else(|| self.far_future())
    }

    /// A deadline that never comes (about 30 years away).
    pub(crate) fn far_future(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(86_400 * 365 * 30)
    }
}
