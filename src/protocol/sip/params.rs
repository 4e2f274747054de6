//! Ordered `;name=value` parameter lists, shared by URIs and header values.
//!
//! SIP compares parameter names case-insensitively and lets a parameter appear without a value
//! (`;lr`, `;rport`), so a plain map would lose either the order (which matters when we copy a Via
//! back) or the difference between "absent" and "present without value" (which RFC 3581 `rport`
//! depends on). Header parameter values are stored decoded (quotes and quoted-pairs removed); URI
//! parameter values are stored as they appear in the URI, escapes included.

use std::fmt;

use super::normalize::is_token_char;

/// One parameter: a name and, when the wire had `=`, a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

/// Parameters in wire order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of the first parameter called `name`, when it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|p| p.value.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces the value of the first parameter called `name`, or appends it.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(existing) => existing.value = value,
            None => self.push(name, value),
        }
    }

    pub fn push(&mut self, name: &str, value: Option<String>) {
        self.0.push(Param {
            name: name.to_owned(),
            value,
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes `;name=value` for each parameter, quoting values that are neither a token nor a host
    /// (RFC 3261 `gen-value`).
    pub(super) fn fmt_as_header_params(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for param in &self.0 {
            write!(f, ";{}", param.name)?;
            if let Some(value) = &param.value {
                if !value.is_empty() && value.chars().all(|c| is_token_char(c) || ":[]".contains(c))
                {
                    write!(f, "={value}")?;
                } else {
                    write!(f, "={}", quote(value))?;
                }
            }
        }
        Ok(())
    }

    /// Writes `;name=value` for each parameter exactly as stored (URI parameters keep their escapes).
    pub(super) fn fmt_as_uri_params(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for param in &self.0 {
            write!(f, ";{}", param.name)?;
            if let Some(value) = &param.value {
                write!(f, "={value}")?;
            }
        }
        Ok(())
    }
}

impl FromIterator<Param> for Params {
    fn from_iter<I: IntoIterator<Item = Param>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Renders `text` as a SIP quoted-string, escaping `"` and `\`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct HeaderParams(Params);

    impl fmt::Display for HeaderParams {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt_as_header_params(f)
        }
    }

    #[test]
    fn names_compare_case_insensitively() {
        let mut params = Params::new();
        params.push("Branch", Some("z9hG4bK1".into()));
        assert_eq!(params.value("branch"), Some("z9hG4bK1"));
    }

    #[test]
    fn a_valueless_parameter_is_present_without_value() {
        let mut params = Params::new();
        params.push("rport", None);
        assert!(params.contains("rport"));
        assert_eq!(params.value("rport"), None);
    }

    #[test]
    fn set_replaces_in_place_and_keeps_order() {
        let mut params = Params::new();
        params.push("branch", Some("b".into()));
        params.push("rport", None);
        params.set("rport", Some("5060".into()));
        params.set("received", Some("192.0.2.1".into()));
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["branch", "rport", "received"]);
        assert_eq!(params.value("rport"), Some("5060"));
    }

    #[test]
    fn header_params_quote_only_values_that_need_it() {
        let mut params = Params::new();
        params.push("received", Some("2001:db8::1".into()));
        params.push("text", Some("Call completed \"elsewhere\"".into()));
        params.push("lr", None);
        assert_eq!(
            HeaderParams(params).to_string(),
            r#";received=2001:db8::1;text="Call completed \"elsewhere\"";lr"#
        );
    }
}
