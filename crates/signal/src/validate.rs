//! Checks for what clients choose: room names, nicknames, chat text, track sources.

use crate::{
    ErrorCode, MAX_CHAT_CHARS, MAX_LANGUAGE_LEN, MAX_LOCAL_MUTES, MAX_MID_LEN, MAX_NICKNAME_CHARS,
    MAX_PASSWORD_CHARS, MAX_SOURCES, MAX_TILE_SIDE, MAX_TOPIC_CHARS, MAX_VIDEO_VIEW, MemberId,
    Sources, TileView,
};

/// A refused input, with its stable code and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub code: ErrorCode,
    pub message: &'static str,
}

fn err(code: ErrorCode, message: &'static str) -> ValidationError {
    ValidationError { code, message }
}

/// A `local_mutes` names at most [`MAX_LOCAL_MUTES`] members.
pub fn validate_local_mutes(ids: &[MemberId]) -> Result<(), ValidationError> {
    if ids.len() > MAX_LOCAL_MUTES {
        return Err(err(
            ErrorCode::InvalidLocalMutes,
            "local_mutes names at most 1024 members",
        ));
    }
    Ok(())
}

/// Whether `s` is of a length in `len` and made of `[A-Za-z0-9_-]` only.
fn is_token(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A room name is 1–64 characters of `[A-Za-z0-9_-]`.
pub fn validate_room_name(name: &str) -> Result<(), ValidationError> {
    if is_token(name, 1..=64) {
        Ok(())
    } else {
        Err(err(
            ErrorCode::InvalidRoomName,
            "a room name is 1 to 64 characters of letters, digits, '-' and '_'",
        ))
    }
}

/// A nickname is 1–32 characters (Unicode scalar values), none of them control characters,
/// and not only white space. Returns the nickname with surrounding white space removed.
pub fn validate_nickname(name: &str) -> Result<String, ValidationError> {
    let trimmed = name.trim();
    let count = trimmed.chars().count();
    if !(1..=MAX_NICKNAME_CHARS).contains(&count) || trimmed.chars().any(char::is_control) {
        return Err(err(
            ErrorCode::InvalidNickname,
            "a nickname is 1 to 32 characters without control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A client key is 22–64 characters of `[A-Za-z0-9_-]` (128 random bits in base64url take 22).
pub fn validate_client_key(key: &str) -> Result<(), ValidationError> {
    if is_token(key, 22..=64) {
        Ok(())
    } else {
        Err(err(
            ErrorCode::InvalidClientKey,
            "a client key is 22 to 64 characters of letters, digits, '-' and '_'",
        ))
    }
}

/// Chat text is 1–2,000 characters and not only white space. Line breaks and tabs are allowed;
/// other control characters are not.
pub fn validate_chat_text(text: &str) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(err(ErrorCode::ChatEmpty, "a chat message cannot be empty"));
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(err(
            ErrorCode::ChatTooLong,
            "a chat message is at most 2000 characters",
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(err(
            ErrorCode::BadMessage,
            "a chat message cannot contain control characters",
        ));
    }
    Ok(())
}

/// A chat `client_ref` is at most 64 printable ASCII characters.
pub fn validate_client_ref(r: &str) -> Result<(), ValidationError> {
    if r.len() <= 64 && r.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(err(
            ErrorCode::InvalidClientRef,
            "client_ref is at most 64 printable ASCII characters",
        ))
    }
}

/// An offer's `sources` names at most [`MAX_SOURCES`] mids, each 1 to [`MAX_MID_LEN`] bytes of
/// SDP token characters (RFC 8866), as a mid is. The sources themselves were checked when the
/// message was parsed.
pub fn validate_sources(sources: &Sources) -> Result<(), ValidationError> {
    if sources.len() > MAX_SOURCES {
        return Err(err(
            ErrorCode::InvalidSources,
            "sources names at most 16 mids",
        ));
    }
    if !sources.keys().all(|mid| is_mid(mid)) {
        return Err(err(
            ErrorCode::InvalidSources,
            "a mid in sources is 1 to 16 SDP token characters",
        ));
    }
    Ok(())
}

/// Whether `mid` can be a mid: 1 to [`MAX_MID_LEN`] SDP token characters.
fn is_mid(mid: &str) -> bool {
    (1..=MAX_MID_LEN).contains(&mid.len()) && mid.bytes().all(is_token_char)
}

/// A `video_view` names at most [`MAX_VIDEO_VIEW`] tracks, each by a mid, with tile sides of
/// at most [`MAX_TILE_SIDE`].
pub fn validate_video_view(tracks: &[TileView]) -> Result<(), ValidationError> {
    if tracks.len() > MAX_VIDEO_VIEW {
        return Err(err(
            ErrorCode::InvalidVideoView,
            "video_view names at most 64 tracks",
        ));
    }
    if !tracks.iter().all(|t| is_mid(&t.id)) {
        return Err(err(
            ErrorCode::InvalidVideoView,
            "a track id in video_view is 1 to 16 SDP token characters",
        ));
    }
    if tracks
        .iter()
        .any(|t| t.width > MAX_TILE_SIDE || t.height > MAX_TILE_SIDE)
    {
        return Err(err(
            ErrorCode::InvalidVideoView,
            "a tile in video_view is at most 16384 pixels a side",
        ));
    }
    Ok(())
}

/// A room password is 1–64 characters, none of them control characters. It is taken as
/// given: white space counts.
pub fn validate_password(password: &str) -> Result<(), ValidationError> {
    let count = password.chars().count();
    if (1..=MAX_PASSWORD_CHARS).contains(&count) && !password.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(err(
            ErrorCode::InvalidPassword,
            "a password is 1 to 64 characters without control characters",
        ))
    }
}

/// A topic is at most 80 characters without control characters; empty says none. Returns it
/// with surrounding white space removed.
pub fn validate_topic(topic: &str) -> Result<String, ValidationError> {
    let trimmed = topic.trim();
    if trimmed.chars().count() <= MAX_TOPIC_CHARS && !trimmed.chars().any(char::is_control) {
        Ok(trimmed.to_owned())
    } else {
        Err(err(
            ErrorCode::InvalidTopic,
            "a topic is at most 80 characters without control characters",
        ))
    }
}

/// A language is a short BCP 47 tag: 2–3 ASCII letters, then subtags of 1–8 letters or digits
/// after `-`, 16 bytes in all; empty says none. Returns it with the primary subtag in lower
/// case, so that `EN` and `en` are one language.
pub fn validate_language(language: &str) -> Result<String, ValidationError> {
    if language.is_empty() {
        return Ok(String::new());
    }
    let mut parts = language.split('-');
    let primary = parts.next().unwrap_or_default();
    let ok = language.len() <= MAX_LANGUAGE_LEN
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !ok {
        return Err(err(
            ErrorCode::InvalidLanguage,
            "a language is a BCP 47 tag such as en or pt-BR, at most 16 characters",
        ));
    }
    let rest = &language[primary.len()..];
    Ok(format!("{}{rest}", primary.to_ascii_lowercase()))
}

/// RFC 8866's `token-char`: printable ASCII but for space, `"`, `(`, `)`, `,`, `/`, `:` to `@`,
/// `[`, `\`, `]` and DEL.
fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2a..=0x2b | 0x2d..=0x2e | 0x30..=0x39 | 0x41..=0x5a | 0x5e..=0x7e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        for ok in ["a", "practice", "Brave-Amber_2", &"x".repeat(64)] {
            assert!(validate_room_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "../etc",
            "é",
            "<script>",
            "a/b",
            "a.b",
        ] {
            assert_eq!(
                validate_room_name(bad).unwrap_err().code,
                ErrorCode::InvalidRoomName,
                "{bad}"
            );
        }
    }

    #[test]
    fn nicknames() {
        assert_eq!(validate_nickname("  Alice ").unwrap(), "Alice");
        assert_eq!(validate_nickname("小明🙂").unwrap(), "小明🙂");
        assert_eq!(
            validate_nickname("<b>x</b>").unwrap(),
            "<b>x</b>",
            "HTML is text"
        );
        assert!(validate_nickname(&"é".repeat(32)).is_ok());
        for bad in ["", "   ", "a\u{0}b", "a\nb", "\u{7f}", &"é".repeat(33)] {
            assert_eq!(
                validate_nickname(bad).unwrap_err().code,
                ErrorCode::InvalidNickname,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn client_keys() {
        assert!(validate_client_key("AAAAAAAAAAAAAAAAAAAAAA").is_ok());
        assert!(validate_client_key(&"a-_Z9".repeat(12)).is_ok());
        let long = "k".repeat(65);
        for bad in [
            "",
            "short",
            "has space in it 1234567",
            "é".repeat(22).as_str(),
            &long,
        ] {
            assert_eq!(
                validate_client_key(bad).unwrap_err().code,
                ErrorCode::InvalidClientKey,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_video_view_names_few_tracks_by_mid_with_tiles_of_sane_size() {
        let tile = |id: &str, width, height| TileView {
            peer: MemberId(1),
            id: id.into(),
            width,
            height,
        };
        assert!(validate_video_view(&[]).is_ok());
        assert!(validate_video_view(&[tile("1", 0, 0), tile("v-1", 16_384, 16_384)]).is_ok());
        let full: Vec<TileView> = (0..64).map(|i| tile(&i.to_string(), 320, 180)).collect();
        assert!(validate_video_view(&full).is_ok());
        let over: Vec<TileView> = (0..65).map(|i| tile(&i.to_string(), 320, 180)).collect();
        for bad in [
            over,
            vec![tile("", 1, 1)],
            vec![tile(&"m".repeat(17), 1, 1)],
            vec![tile("a b", 1, 1)],
            vec![tile("1", 16_385, 1)],
            vec![tile("1", 1, u32::MAX)],
        ] {
            assert_eq!(
                validate_video_view(&bad).unwrap_err().code,
                ErrorCode::InvalidVideoView
            );
        }
    }

    #[test]
    fn sources_name_few_mids_of_token_characters() {
        use crate::TrackSource;
        let of = |mids: &[&str]| -> Sources {
            mids.iter()
                .map(|m| (m.to_string(), TrackSource::Camera))
                .collect()
        };
        assert!(validate_sources(&of(&[])).is_ok());
        assert!(validate_sources(&of(&["0", "1", "audio", "v-1.a", &"m".repeat(16)])).is_ok());
        let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(validate_sources(&of(&many[..16])).is_ok());
        for bad in [
            of(&many),
            of(&[""]),
            of(&[&"m".repeat(17)]),
            of(&["a b"]),
            of(&["a:b"]),
            of(&["é"]),
            of(&["a\u{0}"]),
        ] {
            assert_eq!(
                validate_sources(&bad).unwrap_err().code,
                ErrorCode::InvalidSources,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords_topics_and_languages() {
        assert!(validate_password("open sesame").is_ok());
        assert!(validate_password(&"é".repeat(64)).is_ok());
        for bad in ["", "a\u{0}b", "tab\there", &"é".repeat(65)] {
            assert_eq!(
                validate_password(bad).unwrap_err().code,
                ErrorCode::InvalidPassword,
                "{bad:?}"
            );
        }
        assert_eq!(validate_topic("  Jazz  ").unwrap(), "Jazz");
        assert_eq!(validate_topic("").unwrap(), "");
        assert!(validate_topic(&"字".repeat(80)).is_ok());
        for bad in ["a\nb", &"字".repeat(81)] {
            assert_eq!(
                validate_topic(bad).unwrap_err().code,
                ErrorCode::InvalidTopic,
                "{bad:?}"
            );
        }
        assert_eq!(validate_language("EN").unwrap(), "en");
        assert_eq!(validate_language("pt-BR").unwrap(), "pt-BR");
        assert_eq!(validate_language("").unwrap(), "");
        for bad in [
            "e",
            "engl",
            "en_US",
            "en-",
            "1a",
            "en-toolongsubtag",
            "zh-Hant-TW-x-123456",
        ] {
            assert_eq!(
                validate_language(bad).unwrap_err().code,
                ErrorCode::InvalidLanguage,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn chat_text() {
        assert!(validate_chat_text("hi\nthere").is_ok());
        assert!(validate_chat_text(&"字".repeat(2000)).is_ok());
        assert_eq!(
            validate_chat_text(&"字".repeat(2001)).unwrap_err().code,
            ErrorCode::ChatTooLong
        );
        assert_eq!(
            validate_chat_text(" \n").unwrap_err().code,
            ErrorCode::ChatEmpty
        );
        assert_eq!(
            validate_chat_text("a\u{1b}[31m").unwrap_err().code,
            ErrorCode::BadMessage
        );
    }
}
