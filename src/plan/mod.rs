//! The staffing planner (`hotline plan`): demand per interval of the day
//! from call records, and the agents that meet a service-level target by
//! Erlang C and Erlang A.

pub mod demand;
pub mod erlang;
pub mod staffing;
