//! Talking to Janus's HTTP API: one request, and checking and reading its replies (nothing
//! Janus sends is trusted).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Time allowed for one HTTP request that Janus answers at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An error from Janus (with its code, when Janus gave one) or from talking to it.
#[derive(Debug)]
pub(super) struct JanusError {
    pub(super) code: Option<i64>,
    reason: String,
}

impl JanusError {
    pub(super) fn other(reason: impl fmt::Display) -> JanusError {
        JanusError {
            code: None,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for JanusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "janus error {code}: {}", self.reason),
            None => write!(f, "janus: {}", self.reason),
        }
    }
}

impl From<JanusError> for String {
    fn from(e: JanusError) -> String {
        e.to_string()
    }
}

pub(super) type JResult<T> = Result<T, JanusError>;

pub(super) async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> JResult<Value> {
    let response = http
        .post(url)
        .json(&body)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| JanusError::other(format!("{url}: {e}")))?;
    response
        .json::<Value>()
        .await
        .map_err(|e| JanusError::other(format!("{url}: {e}")))
}

/// The reply itself unless Janus says it is an error.
pub(super) fn check_reply(reply: Value) -> JResult<Value> {
    if reply.get("janus").and_then(Value::as_str) == Some("error") {
        let error = reply.get("error");
        return Err(JanusError {
            code: error.and_then(|e| e.get("code")).and_then(Value::as_i64),
            reason: error
                .and_then(|e| e.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
        });
    }
    Ok(reply)
}

/// The plugin's data in a reply or event, or the plugin's error.
pub(super) fn plugin_data(event: &Value) -> JResult<Value> {
    let data = event
        .get("plugindata")
        .and_then(|p| p.get("data"))
        .ok_or_else(|| JanusError::other(format!("no plugin data in {event}")))?;
    if let Some(reason) = data.get("error") {
        return Err(JanusError {
            code: data.get("error_code").and_then(Value::as_i64),
            reason: reason.as_str().unwrap_or("unknown").to_owned(),
        });
    }
    Ok(data.clone())
}

pub(super) fn plugin_data_lenient(event: &Value) -> Value {
    plugin_data(event).unwrap_or(Value::Null)
}

/// The ids in a `publishers` list (of a `joined` reply or an announcement).
pub(super) fn publisher_ids(data: &Value) -> Vec<u64> {
    data.get("publishers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| p.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

/// The SDP of a JSEP of the given type.
pub(super) fn sdp_of<'a>(jsep: &'a Value, kind: &str) -> JResult<&'a str> {
    if jsep.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(JanusError::other(format!("expected an {kind}, got {jsep}")));
    }
    jsep.get("sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| JanusError::other(format!("no SDP in {jsep}")))
}

/// The `data.id` of a Janus success reply (a new session's or handle's id).
pub(super) fn data_id(reply: &Value, what: &str) -> JResult<u64> {
    reply
        .get("data")
        .and_then(|d| d.get("id"))
        .and_then(Value::as_u64)
        .ok_or_else(|| JanusError::other(format!("no {what} id in {reply}")))
}
