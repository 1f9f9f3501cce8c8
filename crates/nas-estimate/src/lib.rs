//! nas-estimate
