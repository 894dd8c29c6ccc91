//! Commands of the `ephysd` binary besides `run`, one file each: they parse nothing beyond
//! their own arguments (clap does that in `main.rs`), do their one job, and return the exit
//! code with everything said on stdout or stderr.

pub mod inspect;
pub mod recover;
