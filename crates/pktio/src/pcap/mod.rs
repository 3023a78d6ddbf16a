//! Capture files (placeholder).
