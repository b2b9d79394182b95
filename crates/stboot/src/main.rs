//! stboot (stub).
fn main() {}
