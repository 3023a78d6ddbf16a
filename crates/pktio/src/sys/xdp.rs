//! AF_XDP ABI. (In progress.)
