//! Rings. (In progress.)
