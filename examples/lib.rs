//! The logic behind the runnable examples, as a library so the examples'
//! binaries and tests share one copy.
#![forbid(unsafe_code)]

pub mod chat;
