//! nas-supernet
