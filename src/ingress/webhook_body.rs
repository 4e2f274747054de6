//! The body of a webhook call event, parsed without any knowledge of HTTP frameworks, agents or
//! customers: JSON or a URL-encoded form, native or helpdesk CTI field names. Kept pure so it can
//! be fuzzed on its own.

use serde::Deserialize;
use serde_json::Value;

/// The body as received, before we know which of the two forms it is.
#[derive(Debug, Default, Deserialize)]
pub struct RawEvent {
    pub event: Option<String>,
    pub call_id: Option<String>,
    #[serde(rename = "callId")]
    pub call_id_cti: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub direction: Option<String>,
    pub agent: Option<String>,
    #[serde(default, alias = "user[]", deserialize_with = "one_or_many")]
    pub user: Vec<String>,
    #[serde(rename = "answeringNumber")]
    pub answering_number: Option<String>,
    pub cause: Option<String>,
    /// Unix milliseconds of the event at the source; defaults to now.
    pub timestamp: Option<i64>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        Number(i64),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
        Some(OneOrMany::Number(n)) => vec![n.to_string()],
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("not a URL-encoded form: {0}")]
    Form(String),
    #[error("send application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("not JSON: {0}")]
    Json(String),
    #[error("the body must be a JSON object")]
    NotObject,
    #[error("{0}")]
    Invalid(String),
}

/// Parses a body of the given `Content-Type` (empty = JSON).
pub fn parse(content_type: &str, body: &[u8]) -> Result<RawEvent, BodyError> {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        // Repeated `user[]` keys gather into a list.
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| BodyError::Form(e.to_string()))?;
        let mut map = serde_json::Map::new();
        let mut users = Vec::new();
        for (k, v) in pairs {
            if k == "user[]" || k == "user" {
                users.push(Value::String(v));
            } else if k == "timestamp" {
                map.insert(
                    k,
                    v.parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::String(v)),
                );
            } else {
                map.insert(k, Value::String(v));
            }
        }
        map.insert("user".into(), Value::Array(users));
        return serde_json::from_value(Value::Object(map))
            .map_err(|e| BodyError::Invalid(e.to_string()));
    }
    if !(content_type.is_empty()
        || content_type.starts_with("application/json")
        || content_type.contains("+json"))
    {
        return Err(BodyError::UnsupportedMediaType);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(BodyError::NotObject);
    }
    serde_json::from_value(value).map_err(|e| BodyError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_json_and_cti_form_both_parse() {
        let e = parse(
            "application/json",
            br#"{"event":"ringing","call_id":"c1","from":"138","agent":"1001"}"#,
        )
        .unwrap();
        assert_eq!(e.event.as_deref(), Some("ringing"));
        assert_eq!(e.agent.as_deref(), Some("1001"));
        let e = parse(
            "application/x-www-form-urlencoded",
            b"event=newCall&callId=q1&user%5B%5D=1001&user%5B%5D=1002&timestamp=5",
        )
        .unwrap();
        assert_eq!(e.call_id_cti.as_deref(), Some("q1"));
        assert_eq!(e.user, vec!["1001", "1002"]);
        assert_eq!(e.timestamp, Some(5));
        let e = parse("", br#"{"event":"newCall","user":"1001"}"#).unwrap();
        assert_eq!(e.user, vec!["1001"]);
    }

    #[test]
    fn garbage_gets_a_reason() {
        assert_eq!(
            parse("text/plain", b"x").unwrap_err(),
            BodyError::UnsupportedMediaType
        );
        assert!(matches!(
            parse("application/json", b"{"),
            Err(BodyError::Json(_))
        ));
        assert_eq!(
            parse("application/json", b"[1]").unwrap_err(),
            BodyError::NotObject
        );
        assert!(matches!(
            parse("application/json", br#"{"event":5}"#),
            Err(BodyError::Invalid(_))
        ));
    }
}
