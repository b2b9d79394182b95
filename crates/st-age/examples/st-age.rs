//! A minimal age CLI over st-age, for the benchmark against Debian's `age`
//! (`cargo xtask bench-age`) and for trying files by hand:
//!
//! ```text
//! st-age decrypt IDENTITY_FILE IN OUT
//! st-age encrypt RECIPIENT IN OUT
//! ```
//!
//! Streams: the input is read in 1 MiB pieces and written through the Decryptor/Encryptor.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, key, input, output] = args.as_slice() else {
        return Err(
            "usage: st-age decrypt IDENTITY_FILE IN OUT | st-age encrypt RECIPIENT IN OUT".into(),
        );
    };
    let mut input = File::open(input).map_err(|e| format!("{input}: {e}"))?;
    let out = BufWriter::with_capacity(
        1 << 20,
        File::create(output).map_err(|e| format!("{output}: {e}"))?,
    );
    let mut buf = vec![0u8; 1 << 20];
    match mode.as_str() {
        "decrypt" => {
            let text = std::fs::read(key).map_err(|e| format!("{key}: {e}"))?;
            let ids = st_age::Identities::parse(&text).map_err(|e| format!("{key}: {e}"))?;
            let mut d = st_age::Decryptor::new(&ids, out);
            loop {
                let n = input.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 || d.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            d.finish().map_err(|e| e.to_string())?;
        }
        "encrypt" => {
            let r = st_age::Recipient::parse(key).map_err(|e| format!("{key}: {e}"))?;
            let rng = ring::rand::SystemRandom::new();
            let mut random = |b: &mut [u8]| {
                ring::rand::SecureRandom::fill(&rng, b).unwrap_or_else(|_| std::process::abort())
            };
            let mut e =
                st_age::Encryptor::new(&[r], out, &mut random).map_err(|e| e.to_string())?;
            loop {
                let n = input.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                e.write_all(&buf[..n]).map_err(|e| e.to_string())?;
            }
            e.finish().map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown mode {other:?}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("st-age: {e}");
            ExitCode::FAILURE
        }
    }
}
