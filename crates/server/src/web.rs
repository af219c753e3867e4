//! The web client, embedded in the binary at build time from `crates/server/web/`.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Scripts and styles come only from this server; media only from WebRTC.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
    connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The single-page app's shell, for `/` and `/room/<name>`.
pub fn index() -> Response {
    asset("index.html")
}

/// A file of the web client. Any other address gets the app's page with status 404: the page
/// sees that the address is neither the start page nor a room and says it was not found, in
/// the app's own style and language, with a link to the start page.
pub fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => respond(path, StatusCode::OK, file.data),
        None => match Assets::get("index.html") {
            Some(page) => respond("index.html", StatusCode::NOT_FOUND, page.data),
            None => (StatusCode::NOT_FOUND, "not found").into_response(),
        },
    }
}

fn respond(path: &str, status: StatusCode, body: Cow<'static, [u8]>) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
