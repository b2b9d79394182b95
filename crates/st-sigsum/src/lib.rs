//! Sigsum for System Transparency (work in progress, issue 9 §1).
#![forbid(unsafe_code)]
