//! TPM 2.0 commands (skeleton; see issue 8).
