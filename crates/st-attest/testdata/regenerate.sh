#!/bin/sh
# Rewrites the committed attestation fixtures (real swtpm quotes; needs swtpm, swtpm-tools and
# tpm2-tools, as `cargo xtask test` installs them). See tests/swtpm.rs, `regenerate`.
set -eu
cd "$(dirname "$0")/../../.."
ST_ATTEST_REGEN=1 cargo test -p st-attest --test swtpm -- regenerate --exact --nocapture
