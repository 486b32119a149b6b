//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the SQL files at compile
//! time, and cargo would otherwise not notice an edited or added migration.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
