//! Names the model gives meaning to: the lanes, and what a name may be.

pub const LANES: &[&str] = &["draft", "sandbox", "governed", "staging", "production"];
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
