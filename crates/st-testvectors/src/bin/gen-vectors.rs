//! `gen-vectors [--check] [DIR]`: write (or check) the test vectors; DIR defaults to
//! `testdata/vectors` of this workspace.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let dir = dir.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
    });
    let result = if check {
        st_testvectors::check(&dir)
    } else {
        st_testvectors::generate(&dir).map_err(|e| format!("{}: {e}", dir.display()))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-vectors: {e}");
            ExitCode::FAILURE
        }
    }
}
