//! What this host can do: probes run once, results remembered.
