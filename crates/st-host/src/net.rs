//! STUB: filled in by the net work.
