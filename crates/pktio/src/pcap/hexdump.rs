//! The packet dumps of tcpdump's `-x`, `-X` and `-A`, byte for byte as
//! tcpdump 4.99 prints them (`print-ascii.c`): 16 bytes a line, offsets in
//! hex, bytes in pairs.

use std::fmt::Write;

/// `-x`: lines of `\t0x0000:  4500 002e …`, each ending in `\n`.
pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 3 + 16);
    for (i, line) in data.chunks(16).enumerate() {
        let _ = write!(s, "\t0x{:04x}: ", i * 16);
        for pair in line.chunks(2) {
            s.push(' ');
            for b in pair {
                let _ = write!(s, "{b:02x}");
            }
        }
        s.push('\n');
    }
    s
}

/// `-X`: [`hex`] with the bytes as ASCII beside them (`.` for anything
/// but a graphic character).
pub fn hex_and_ascii(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 4 + 16);
    for (i, line) in data.chunks(16).enumerate() {
        let _ = write!(s, "\t0x{:04x}:  ", i * 16);
        let mut hex = String::with_capacity(40);
        for (j, pair) in line.chunks(2).enumerate() {
            if j > 0 {
                hex.push(' ');
            }
            for b in pair {
                let _ = write!(hex, "{b:02x}");
            }
        }
        let _ = write!(s, "{hex:<39}  ");
        for &b in line {
            s.push(if b.is_ascii_graphic() { b as char } else { '.' });
        }
        s.push('\n');
    }
    s
}

/// `-A`: the bytes as ASCII (graphic characters, space, tab and line feed
/// as they are; a carriage return before a line feed left out; anything
/// else `.`), then a line break.
pub fn ascii(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() + 2);
    for (i, &b) in data.iter().enumerate() {
        match b {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {}
            b'\t' | b' ' | b'\n' => s.push(b as char),
            b if b.is_ascii_graphic() => s.push(b as char),
            _ => s.push('.'),
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected text from tcpdump 4.99.3 (-x, -X, -A) on the same bytes.
    const DATA: &[u8] = &[
        0x45, 0x00, 0x00, 0x2e, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0xee, 0x96, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x12, 0x00, 0x02, 0x10, 0x92, 0x00, 0x09, 0x00, 0x1a, 0x00, 0x00, b'h', b'e',
        b'l', b'l', b'o', b' ', b'w', b'o', b'r', b'l', b'd', b' ', b'1', b'2', b'3', b'4', b'5',
        b'6',
    ];

    #[test]
    fn like_tcpdump() {
        assert_eq!(
            hex(DATA),
            "\t0x0000:  4500 002e 0001 0000 4011 ee96 c612 0001\n\
             \t0x0010:  c612 0002 1092 0009 001a 0000 6865 6c6c\n\
             \t0x0020:  6f20 776f 726c 6420 3132 3334 3536\n"
        );
        assert_eq!(
            hex_and_ascii(DATA),
            "\t0x0000:  4500 002e 0001 0000 4011 ee96 c612 0001  E.......@.......\n\
             \t0x0010:  c612 0002 1092 0009 001a 0000 6865 6c6c  ............hell\n\
             \t0x0020:  6f20 776f 726c 6420 3132 3334 3536       o.world.123456\n"
        );
        assert_eq!(
            ascii(DATA),
            "E.......@..............\t....hello world 123456\n"
        );
        assert_eq!(hex(&[1, 2, 3]), "\t0x0000:  0102 03\n");
        assert_eq!(hex(&[]), "");
    }
}
