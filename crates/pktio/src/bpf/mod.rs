//! The XDP steering program, generated in Rust: instruction builder, maps,
//! loading, test runs and attaching. (In progress.)
