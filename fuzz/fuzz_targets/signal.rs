//! The signalling parser and the validation of every field a client sends: no panic, and
//! whatever parses writes back as JSON that parses to the same message.
#![no_main]

use free4chat_signal::{
    ClientMsg, MAX_MESSAGE_BYTES, check_chat_msg, validate_chat_text, validate_client_key,
    validate_client_ref, validate_language, validate_local_mutes, validate_nickname,
    validate_password, validate_reaction, validate_room_name, validate_sources, validate_topic,
    validate_video_view,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = ClientMsg::parse(text) {
        match &msg {
            ClientMsg::Join {
                room,
                name,
                key,
                password,
                topic,
                language,
                ..
            } => {
                let _ = validate_room_name(room);
                let _ = validate_nickname(name);
                let _ = key.as_deref().map(validate_client_key);
                let _ = password.as_deref().map(validate_password);
                let _ = topic.as_deref().map(validate_topic);
                let _ = language.as_deref().map(validate_language);
            }
            ClientMsg::SetRoom {
                topic, language, ..
            } => {
                let _ = topic.as_deref().map(validate_topic);
                let _ = language.as_deref().map(validate_language);
            }
            ClientMsg::Chat { .. } | ClientMsg::ChatEdit { .. } | ClientMsg::ChatDelete { .. } => {
                let _ = check_chat_msg(&msg);
            }
            ClientMsg::ChatReact { emoji, .. } => {
                let _ = check_chat_msg(&msg);
                let _ = validate_reaction(emoji);
            }
            ClientMsg::Rename { name } => {
                let _ = validate_nickname(name);
            }
            ClientMsg::Offer { sources, .. } => {
                let _ = sources.as_ref().map(validate_sources);
            }
            ClientMsg::LocalMutes { ids } => {
                let _ = validate_local_mutes(ids);
            }
            ClientMsg::VideoView { tracks } => {
                let _ = validate_video_view(tracks);
            }
            _ => {}
        }
        let json = serde_json::to_string(&msg).expect("a parsed message writes");
        if json.len() <= MAX_MESSAGE_BYTES {
            assert_eq!(ClientMsg::parse(&json).as_ref(), Ok(&msg), "{json}");
        }
    }
    // Each check on any text; a nickname it takes is taken again as it is.
    let _ = validate_room_name(text);
    let _ = validate_chat_text(text);
    let _ = validate_client_key(text);
    let _ = validate_client_ref(text);
    let _ = validate_password(text);
    let _ = validate_topic(text);
    let _ = validate_language(text);
    let _ = validate_reaction(text);
    if let Ok(name) = validate_nickname(text) {
        assert_eq!(validate_nickname(&name).as_deref(), Ok(name.as_str()));
    }
});
