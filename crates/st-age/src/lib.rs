//! age encryption for OS packages (work in progress, issue 9 §3).
#![forbid(unsafe_code)]
