//! GPT-2's `bytes_to_unicode` table: every byte gets a printable character so
//! that byte strings can live in a JSON vocabulary.
//!
//! Printable Latin-1 bytes (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`) map to themselves;
//! the other 68 bytes map, in increasing byte order, to U+0100, U+0101, ...
//! (so space 0x20 becomes `Ġ` U+0120 and newline 0x0A becomes `Ċ` U+010A).

/// `BYTE_TO_CHAR[b]` is the character standing for byte `b`.
pub(crate) const BYTE_TO_CHAR: [char; 256] = build_table();

const fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

const fn build_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    let mut b = 0usize;
    while b < 256 {
        let code = if is_printable(b as u8) {
            b as u32
        } else {
            let c = next;
            next += 1;
            c
        };
        table[b] = match char::from_u32(code) {
            Some(c) => c,
            None => panic!("bytes_to_unicode: invalid code point"),
        };
        b += 1;
    }
    table
}

/// Inverse table: `CHAR_TO_BYTE[c]` is the byte of character `c` (all 256 codes are < 324).
const CHAR_TO_BYTE: [Option<u8>; 256 + 68] = build_inverse();

const fn build_inverse() -> [Option<u8>; 256 + 68] {
    let mut inv = [None; 256 + 68];
    let mut b = 0usize;
    while b < 256 {
        inv[BYTE_TO_CHAR[b] as usize] = Some(b as u8);
        b += 1;
    }
    inv
}

/// The byte a byte-level character stands for, if it is one of the 256.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    CHAR_TO_BYTE.get(c as usize).copied().flatten()
}

/// Byte-level text of a byte string (`b" hi"` becomes `"Ġhi"`).
pub fn bytes_to_byte_level(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| BYTE_TO_CHAR[b as usize]).collect()
}

/// Bytes of a byte-level string, or `None` if some character is not one of the 256.
pub fn byte_level_to_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(char_to_byte).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_gpt2() {
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_TO_CHAR[b'\t' as usize], 'ĉ');
        assert_eq!(BYTE_TO_CHAR[b'!' as usize], '!');
        assert_eq!(BYTE_TO_CHAR[0xA0], 'ł');
        assert_eq!(BYTE_TO_CHAR[0xAD], 'Ń');
        assert_eq!(BYTE_TO_CHAR[0x7F], 'ġ');
        assert_eq!(BYTE_TO_CHAR[0], 'Ā');
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = BYTE_TO_CHAR[b as usize];
            assert!(seen.insert(c));
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(char_to_byte('a'), Some(b'a'));
        assert_eq!(char_to_byte('中'), None);
        assert_eq!(char_to_byte(' '), None);
        assert_eq!(char_to_byte(char::from_u32(256 + 68).unwrap()), None);
    }
}
