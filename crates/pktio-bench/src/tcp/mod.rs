//! The TCP receive benchmark's engines.
