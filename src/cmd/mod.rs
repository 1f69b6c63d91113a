//! The commands that follow a tree: each says what its session does (src/session).
pub mod enforce;
pub mod record;
pub mod watch;
