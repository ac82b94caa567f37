//! The core's timeline on tokio's clock, so `tokio::time::pause()` makes
//! tests instant.

use std::time::Duration;
use steadfast_core::{Epoch, Instant};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Epoch,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: Epoch::new(tokio::time::Instant::now().into_std()),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.epoch.instant(tokio::time::Instant::now().into_std())
    }

    pub(crate) fn tokio_instant(&self, at: Instant) -> tokio::time::Instant {
        self.epoch
            .to_std(at)
            .map_or_else(|| self.far_future(), tokio::time::Instant::from_std)
    }

    /// A deadline that never comes (about 30 years away).
    pub(crate) fn far_future(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(86_400 * 365 * 30)
    }
}
