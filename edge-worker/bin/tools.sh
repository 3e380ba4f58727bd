# Sourced by bin/build and bin/setup-wasm: where the Worker's build tools live and how to find
# them. Installed tools are cached under $CBS_CACHE (outside the clone, shared by every clone and
# by CI on the same machine); copies already on the machine are used if their version fits.
CBS_CACHE="${CBS_CACHE:-$HOME/.cache/chargeback-platform}"
EDGE_TOOLS="$CBS_CACHE/edge-worker-tools"

# The wasm-bindgen CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

# Prints the path of a wasm-bindgen whose version matches Cargo.lock, or nothing.
find_wasm_bindgen() {
  local want candidate
  want="$(wasm_bindgen_version)"
  for candidate in "${WASM_BINDGEN_BIN:-}" "$EDGE_TOOLS/bin/wasm-bindgen" "$HOME/.cargo/bin/wasm-bindgen" \
    "$(command -v wasm-bindgen 2>/dev/null || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if [ "$("$candidate" --version 2>/dev/null | awk '{print $2}')" = "$want" ]; then
      echo "$candidate"
      return 0
    fi
  done
}

