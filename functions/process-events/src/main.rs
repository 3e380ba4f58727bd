fn main() {
    // Placeholder until its issue lands.
}
