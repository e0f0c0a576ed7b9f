//! The HTTP side of `airlock serve`.
