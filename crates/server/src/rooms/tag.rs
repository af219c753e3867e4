//! A member's tag: who they are beyond one connection, derived from the key their client keeps
//! (`join`'s `key`), so that others know them again when they come back. The key itself is
//! never passed on: the tag is a hash of it and the room's name, so it can neither be turned
//! back into the key nor followed from one room to another.

use sha2::{Digest, Sha256};

/// The tag's length in hex digits (128 bits).
const TAG_HEX: usize = 32;

/// The tag of the member whose client key is `key` (already checked) in `room`.
pub fn member_tag(room: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"free4chat member tag\0");
    hash.update(room.as_bytes());
    hash.update(b"\0");
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    digest
        .iter()
        .take(TAG_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `tag` has a tag's shape (what another node of a cluster passes on is checked too).
pub fn is_tag(tag: &str) -> bool {
    tag.len() == TAG_HEX && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_in_the_same_room_gives_the_same_tag_and_nothing_else_does() {
        let key = "AAAAAAAAAAAAAAAAAAAAAA";
        let tag = member_tag("practice", key);
        assert!(is_tag(&tag), "{tag}");
        assert_eq!(tag, member_tag("practice", key));
        assert_ne!(tag, member_tag("practice", "AAAAAAAAAAAAAAAAAAAAAB"));
        assert_ne!(tag, member_tag("other", key));
        assert!(!tag.contains(key));
        assert!(!is_tag("xyz") && !is_tag(&"G".repeat(32)));
    }
}
