//! One module per group of subcommands.

pub mod bench;
pub mod doctor;
pub mod exec;
pub mod image;
pub mod lifecycle;
pub mod logs;
pub mod ps;
pub mod run;
pub mod shell;
pub mod system;
