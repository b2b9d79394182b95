//! Time to parse and verify a Sigsum proof (`cargo xtask bench-sigsum` runs this in release
//! mode): a real proof from a public test log (8 cosignatures, 10 node hashes) and test-log
//! proofs for the last leaf of a 1001-leaf tree with 3 and 8 cosigning witnesses.
//! Prints a markdown table for docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use st_sigsum::testlog::{TestKey, TestLog};
use st_sigsum::{Policy, Proof};
use std::time::Instant;

const HELLO_PROOF: &[u8] = include_bytes!("../testdata/hello-sigsum.proof");
const TEST_POLICY: &[u8] = include_bytes!("../testdata/sigsum-test-2025-3.policy");

fn key(n: u8) -> TestKey {
    TestKey::from_seed(&[n; 32]).unwrap()
}

/// (median, min) microseconds of `f` over `n` runs.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[n / 2], t[0])
}

/// A proof for the last leaf of a 1001-leaf test log, cosigned by `witnesses` (quorum: a
/// majority of them), with its policy, submitter key and message.
fn test_case(witnesses: u8) -> (Proof, Policy, [u8; 32], [u8; 32]) {
    let mut log = TestLog::new(key(1));
    let submitter = key(2);
    let filler = key(3);
    let message = [0x42; 32];
    for i in 0..1000u32 {
        let mut m = [0u8; 32];
        m[..4].copy_from_slice(&i.to_be_bytes());
        log.add(&filler, &m);
    }
    let index = log.add(&submitter, &message);
    let ws: Vec<TestKey> = (0..witnesses).map(|i| key(10 + i)).collect();
    let mut text = log.key().log_line();
    for (i, w) in ws.iter().enumerate() {
        text.push_str(&w.witness_line(&format!("w{i}")));
    }
    let names: Vec<String> = (0..witnesses).map(|i| format!("w{i}")).collect();
    text.push_str(&format!(
        "group q {} {}\nquorum q\n",
        witnesses / 2 + 1,
        names.join(" ")
    ));
    let cosigners: Vec<(&TestKey, u64)> = ws.iter().map(|w| (w, 1_700_000_000)).collect();
    let proof = log.proof(index, &cosigners).unwrap();
    (
        proof,
        Policy::parse(text.as_bytes()).unwrap(),
        submitter.public(),
        message,
    )
}

fn main() {
    let n = 2000;
    println!("| proof | cosignatures | node hashes | parse | verify | parse + verify |");
    println!("|---|---|---|---|---|---|");
    let hello = {
        let p = Proof::parse(HELLO_PROOF).unwrap();
        let policy = Policy::parse(TEST_POLICY).unwrap();
        let key: [u8; 32] = [
            0x99, 0xed, 0x58, 0x58, 0x3e, 0x87, 0x50, 0xb2, 0x05, 0x48, 0xe6, 0x9d, 0xf4, 0xa4,
            0xe1, 0xa5, 0x92, 0x37, 0x9a, 0x9a, 0x66, 0xc5, 0x1c, 0xd3, 0x2e, 0x42, 0xfb, 0xe4,
            0xe1, 0xbd, 0xe7, 0x8a,
        ];
        let msg = ring::digest::digest(&ring::digest::SHA256, b"Hello, Sigsum!\n");
        let msg: [u8; 32] = msg.as_ref().try_into().unwrap();
        ("public test log (serviceberry)", p, policy, key, msg)
    };
    let (p3, pol3, k3, m3) = test_case(3);
    let (p8, pol8, k8, m8) = test_case(8);
    let cases = [
        hello,
        ("test log, 1001 leaves, 2 of 3", p3, pol3, k3, m3),
        ("test log, 1001 leaves, 5 of 8", p8, pol8, k8, m8),
    ];
    for (name, proof, policy, key, msg) in cases {
        let text = proof.to_ascii();
        st_sigsum::verify(&proof, &policy, &key, &msg).unwrap();
        let (parse, _) = time(n, || {
            std::hint::black_box(Proof::parse(&text).unwrap());
        });
        let (verify, _) = time(n, || {
            std::hint::black_box(st_sigsum::verify(&proof, &policy, &key, &msg).unwrap());
        });
        let (both, _) = time(n, || {
            let p = Proof::parse(&text).unwrap();
            std::hint::black_box(st_sigsum::verify(&p, &policy, &key, &msg).unwrap());
        });
        println!(
            "| {name} | {} | {} | {parse:.1} µs | {verify:.1} µs | {both:.1} µs |",
            proof.tree_head.cosignatures.len(),
            proof.inclusion.path.len()
        );
    }
    println!("\nMedian of {n} runs each (release build, ring Ed25519).");
}
