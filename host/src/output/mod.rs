//! Outputs: the terminal summary, the JSON report and the live progress view.

pub mod json;
pub mod live;
pub mod summary;
