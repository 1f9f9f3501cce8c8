//! nas-strategy
