//! stprov (skeleton; see issue 8 section 5).
fn main() {}
