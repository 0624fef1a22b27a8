//! `sqlx::migrate!` embeds `migrations/` at compile time, but cargo does not know that:
//! without this, adding a migration alone rebuilds nothing and the binary runs without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
