//! STUB: filled in by the image work.
