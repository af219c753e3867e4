//! Nicknames unique in a room: a name another member holds already gets the lowest free
//! suffix " (2)", " (3)", …, so that nobody in a room can pass for someone else.

use std::collections::HashSet;

use free4chat_signal::MAX_NICKNAME_CHARS;

/// `wanted` if none of `others` holds it, else `wanted` with the lowest suffix " (n)" that
/// makes it free. Names compare without regard to case. The base is shortened to leave room
/// for the suffix within the nickname limit. `others` is the room's other members' names.
pub fn unique_name<'a>(wanted: &str, others: impl IntoIterator<Item = &'a str>) -> String {
    let taken: HashSet<String> = others.into_iter().map(str::to_lowercase).collect();
    if !taken.contains(&wanted.to_lowercase()) {
        return wanted.to_owned();
    }
    // Of the suffixes 2..=taken.len() + 2, at least one is free: each taken name rules out
    // one suffix at most, so this ends within the size of the room.
    for n in 2..=taken.len() + 2 {
        let suffix = format!(" ({n})");
        let room = MAX_NICKNAME_CHARS.saturating_sub(suffix.chars().count());
        let base: String = wanted.chars().take(room).collect();
        let candidate = format!("{}{suffix}", base.trim_end());
        if !taken.contains(&candidate.to_lowercase()) {
            return candidate;
        }
    }
    // Not reached (see above); a name that is not unique is better than none.
    wanted.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_name_is_kept_and_a_taken_one_gets_the_lowest_free_suffix() {
        assert_eq!(unique_name("Ann", ["Bob"]), "Ann");
        assert_eq!(unique_name("Ann", ["Bob", "ann"]), "Ann (2)");
        assert_eq!(unique_name("Ann", ["Ann", "Ann (2)"]), "Ann (3)");
        assert_eq!(unique_name("Ann", ["Ann", "Ann (3)"]), "Ann (2)");
        assert_eq!(unique_name("Ann (2)", ["Ann (2)"]), "Ann (2) (2)");
    }

    #[test]
    fn a_suffixed_name_stays_within_the_limit() {
        let long = "W".repeat(MAX_NICKNAME_CHARS);
        let got = unique_name(&long, [long.as_str()]);
        assert_eq!(got.chars().count(), MAX_NICKNAME_CHARS);
        assert!(got.ends_with(" (2)"));
        let emoji = "🎧".repeat(MAX_NICKNAME_CHARS);
        let got = unique_name(&emoji, [emoji.as_str()]);
        assert_eq!(got.chars().count(), MAX_NICKNAME_CHARS);
        assert!(free4chat_signal::validate_nickname(&got).is_ok());
    }

    #[test]
    fn a_room_full_of_one_name_still_finds_a_free_one() {
        let names: Vec<String> = std::iter::once("x".to_owned())
            .chain((2..=500).map(|n| format!("x ({n})")))
            .collect();
        assert_eq!(
            unique_name("X", names.iter().map(String::as_str)),
            "X (501)"
        );
    }
}
