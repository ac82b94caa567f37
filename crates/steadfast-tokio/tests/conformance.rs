//! Every adapter conformance scenario of steadfast-testkit, against steadfast-tokio.

use steadfast_testkit::engine::Engine;
use steadfast_tokio::Tokio;

steadfast_testkit::conformance_tests!(Engine::<Tokio>::new());
