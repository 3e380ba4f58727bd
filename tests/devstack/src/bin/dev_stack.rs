fn main() {
    // Filled in below.
}
