//! STUB: filled in by the sys work.
