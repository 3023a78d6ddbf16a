//! AF_XDP. (In progress.)
