//! STUB: filled in by the log work.
