//! STUB: filled in by the efi work.
