//! One module per group of subcommands.

pub mod bench;
pub mod doctor;
pub mod image;
pub mod ps;
pub mod run;
