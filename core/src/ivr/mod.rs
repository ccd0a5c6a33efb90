//! The IVR: programs written in the config, compiled to data
//! ([`program`]), and the interpreter that runs one per call
//! ([`interpreter`]).

pub mod interpreter;
pub mod program;

pub use interpreter::Ivr;
