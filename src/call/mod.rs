//! One call's phases and its flow.

pub mod flow;
