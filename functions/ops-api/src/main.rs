fn main() {
    // Wired once the ChargebackStop client and the table adapters land (see wiring.rs).
}
