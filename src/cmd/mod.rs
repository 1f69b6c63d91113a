//! The commands that follow a tree, each saying what its session does (src/session), and
//! diff, which replays a kept run through the same pipeline, and allow, which makes its
//! findings rules.
pub mod allow;
pub mod diff;
pub mod enforce;
pub mod events;
pub mod record;
pub mod watch;
