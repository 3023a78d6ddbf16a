//! Ethernet, IPv4 and UDP: build and parse frames (smoltcp style).
