//! Turning buffered output bytes into entry text. A process writes bytes,
//! and a read may end inside a multi-byte character; that tail waits for
//! the next chunk instead of becoming a replacement character.

/// Takes the text of `buf`, leaving an incomplete trailing UTF-8 sequence
/// in it unless `last` (then it is replaced like any invalid byte).
pub fn take_text(buf: &mut Vec<u8>, last: bool) -> String {
    let keep = if last { 0 } else { incomplete_tail(buf) };
    let cut = buf.len() - keep;
    let tail = buf.split_off(cut);
    let head = std::mem::replace(buf, tail);
    match String::from_utf8(head) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Bytes at the end that start a character not yet complete (0 to 3).
fn incomplete_tail(buf: &[u8]) -> usize {
    let start = buf.len().saturating_sub(3);
    for i in (start..buf.len()).rev() {
        let b = buf[i];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        let have = buf.len() - i;
        return if have < need { have } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_character_waits_for_its_rest() {
        let euro = "€".as_bytes(); // 3 bytes
        let mut buf = b"ab".to_vec();
        buf.extend_from_slice(&euro[..2]);
        assert_eq!(take_text(&mut buf, false), "ab");
        assert_eq!(buf, &euro[..2]);
        buf.extend_from_slice(&euro[2..]);
        assert_eq!(take_text(&mut buf, false), "€");
        assert!(buf.is_empty());
    }

    #[test]
    fn the_last_take_replaces_what_cannot_be_decoded() {
        let mut buf = vec![b'a', 0xE2, 0x82];
        assert_eq!(take_text(&mut buf, true), "a\u{FFFD}");
        let mut bad = vec![0xFF, b'b'];
        assert_eq!(take_text(&mut bad, false), "\u{FFFD}b");
    }
}
