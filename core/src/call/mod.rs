//! One call: its IVR program (as data), the interpreter that runs it, and
//! the caller directory that classes customers.

pub mod directory;
pub mod ivr;
pub mod program;
