# Sourced by every bin/ script: one place for the paths the tools and builds share.
# Safe to source twice.
CBS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CBS_ROOT
# Tools and the build cache live outside the clone so a second clone (or CI on the same machine)
# reuses them instead of rebuilding the AWS SDK on 2 cores.
export CBS_CACHE="${CBS_CACHE:-$HOME/.cache/chargeback-platform}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CBS_CACHE/target}"
export CBS_VENV="$CBS_CACHE/venv"
export PATH="$CBS_VENV/bin:$HOME/.cargo/bin:$PATH"
# Local runs never talk to real AWS: the emulator accepts any credentials.
export AWS_REGION="${AWS_REGION:-eu-west-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export WRANGLER_SEND_METRICS=false
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
