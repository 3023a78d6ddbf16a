//! bpf(2): program load, maps, links, test runs. (Filled in by the bpf work.)
