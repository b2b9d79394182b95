//! STUB: filled in by the kexec work.
