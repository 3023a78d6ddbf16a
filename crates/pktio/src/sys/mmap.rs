//! Mmap RAII. (In progress.)
