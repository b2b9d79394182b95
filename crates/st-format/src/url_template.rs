//! STUB: replaced by the host config work.
#![allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[error("url template stub")]
pub struct UrlTemplateError;
pub struct UrlTemplate;
