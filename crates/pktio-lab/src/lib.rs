//! The lab. (In progress.)
