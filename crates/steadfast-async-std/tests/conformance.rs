//! Every adapter conformance scenario of steadfast-testkit, against
//! steadfast-async-std: once with the driver on async-std's executor, once
//! on smol's. The testkit's servers and proxy run on tokio inside the test;
//! the adapter's I/O, timers and driver task never do (async-io and the
//! marker's executor).

mod on_async_std {
    use steadfast_async_std::AsyncStd;
    use steadfast_testkit::engine::Engine;
    steadfast_testkit::conformance_tests!(Engine::<AsyncStd>::new());
}

mod on_smol {
    use steadfast_async_std::Smol;
    use steadfast_testkit::engine::Engine;
    steadfast_testkit::conformance_tests!(Engine::<Smol>::new());
}
