//! Reads RFC 4235 `application/dialog-info+xml` bodies, the call-state reports a PBX sends in NOTIFY
//! for subscribed extensions.
//!
//! ringside has no XML crate, and these documents use a tiny, fixed vocabulary, so a small scanner
//! reads them: elements, attributes in any order (single or double quotes), namespace prefixes
//! (resolved, so `<di:dialog xmlns:di="urn:ietf:params:xml:ns:dialog-info">` works and elements of
//! other namespaces, which PBXs add as extensions, are skipped), comments, processing instructions,
//! CDATA, and the five predefined entities plus numeric character references. DOCTYPE is refused:
//! it is never needed here and is the door to entity-expansion attacks.
//!
//! Input is bounded in size, nesting depth and element count, and anything that is not a
//! well-formed dialog-info document — unknown dialog states, missing required attributes, stray
//! text — is an error, never a panic.

use thiserror::Error;

/// The RFC 4235 namespace.
pub const DIALOG_INFO_NAMESPACE: &str = "urn:ietf:params:xml:ns:dialog-info";

const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 10_000;

/// Why a body is not a usable dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogInfoError {
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the document is not UTF-8")]
    NotUtf8,
    #[error("malformed XML at byte {offset}: {reason}")]
    Xml { offset: usize, reason: &'static str },
    #[error("elements nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the document has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("the root element is not dialog-info")]
    NotDialogInfo,
    #[error("<{element}> lacks the {attribute} attribute")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("<{element}> has an invalid {what}: {value:?}")]
    InvalidValue {
        element: &'static str,
        what: &'static str,
        value: String,
    },
    #[error("dialog {0:?} has no state element")]
    MissingState(String),
}

/// Whether the document lists every dialog or only the changed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentState {
    Full,
    Partial,
}

/// RFC 4235 3.7.1 dialog states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Trying,
    Proceeding,
    Early,
    Confirmed,
    Terminated,
}

/// Whether the observed party sent (initiator) or received (recipient) the INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Initiator,
    Recipient,
}

/// One side of a dialog: who it is and where it can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    /// The identity URI, e.g. `sip:+8613800000000@pbx.example.com`.
    pub identity: Option<String>,
    /// The `display` attribute of the identity.
    pub display_name: Option<String>,
    /// The `uri` attribute of the target.
    pub target: Option<String>,
}

/// One `<dialog>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogEntry {
    pub id: String,
    pub call_id: Option<String>,
    pub local_tag: Option<String>,
    pub remote_tag: Option<String>,
    pub direction: Option<Direction>,
    pub state: DialogState,
    /// Why the state was entered: `cancelled`, `rejected`, `replaced`, `local-bye`, `remote-bye`,
    /// `error`, `timeout`.
    pub state_event: Option<String>,
    /// The response code that caused the state, when given.
    pub state_code: Option<u16>,
    pub duration: Option<u64>,
    pub local: Option<Participant>,
    pub remote: Option<Participant>,
}

/// A parsed dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    pub version: u64,
    pub state: DocumentState,
    /// The monitored resource, e.g. `sip:8001@pbx.example.com`.
    pub entity: String,
    pub dialogs: Vec<DialogEntry>,
}

/// Parses an `application/dialog-info+xml` body.
pub fn parse_dialog_info(body: &[u8]) -> Result<DialogInfo, DialogInfoError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DialogInfoError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| DialogInfoError::NotUtf8)?;
    let root = parse_xml(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    read_document(&root)
}

fn read_document(root: &Element) -> Result<DialogInfo, DialogInfoError> {
    if !root.is("dialog-info") {
        return Err(DialogInfoError::NotDialogInfo);
    }
    let required = |attribute: &'static str| {
        root.attribute(attribute)
            .ok_or(DialogInfoError::MissingAttribute {
                element: "dialog-info",
                attribute,
            })
    };
    let version_text = required("version")?;
    let version = version_text
        .trim()
        .parse()
        .map_err(|_| DialogInfoError::InvalidValue {
            element: "dialog-info",
            what: "version",
            value: version_text.to_owned(),
        })?;
    let state = match required("state")?.trim() {
        "full" => DocumentState::Full,
        "partial" => DocumentState::Partial,
        other => {
            return Err(DialogInfoError::InvalidValue {
                element: "dialog-info",
                what: "state",
                value: other.to_owned(),
            });
        }
    };
    let entity = required("entity")?.trim().to_owned();
    let dialogs = root
        .children_named("dialog")
        .map(read_dialog)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DialogInfo {
        version,
        state,
        entity,
        dialogs,
    })
}

fn read_dialog(element: &Element) -> Result<DialogEntry, DialogInfoError> {
    let invalid = |what: &'static str, value: &str| DialogInfoError::InvalidValue {
        element: "dialog",
        what,
        value: value.to_owned(),
    };
    let id = element
        .attribute("id")
        .ok_or(DialogInfoError::MissingAttribute {
            element: "dialog",
            attribute: "id",
        })?
        .to_owned();
    let direction = match element.attribute("direction").map(str::trim) {
        None => None,
        Some("initiator") => Some(Direction::Initiator),
        Some("recipient") => Some(Direction::Recipient),
        Some(other) => return Err(invalid("direction", other)),
    };
    let state_element = element
        .children_named("state")
        .next()
        .ok_or_else(|| DialogInfoError::MissingState(id.clone()))?;
    let state = match state_element.text.trim() {
        "trying" => DialogState::Trying,
        "proceeding" => DialogState::Proceeding,
        "early" => DialogState::Early,
        "confirmed" => DialogState::Confirmed,
        "terminated" => DialogState::Terminated,
        other => return Err(invalid("state", other)),
    };
    let state_code = state_element
        .attribute("code")
        .map(|code| code.trim().parse().map_err(|_| invalid("state code", code)))
        .transpose()?;
    let duration = element
        .children_named("duration")
        .next()
        .map(|duration| {
            let text = duration.text.trim();
            text.parse().map_err(|_| invalid("duration", text))
        })
        .transpose()?;
    let participant = |name: &str| {
        element.children_named(name).next().map(|side| {
            let identity = side.children_named("identity").next();
            Participant {
                identity: identity
                    .map(|identity| identity.text.trim().to_owned())
                    .filter(|text| !text.is_empty()),
                display_name: identity
                    .and_then(|identity| identity.attribute("display"))
                    .map(str::to_owned),
                target: side
                    .children_named("target")
                    .next()
                    .and_then(|target| target.attribute("uri"))
                    .map(|uri| uri.trim().to_owned()),
            }
        })
    };
    Ok(DialogEntry {
        id,
        call_id: element.attribute("call-id").map(str::to_owned),
        local_tag: element.attribute("local-tag").map(str::to_owned),
        remote_tag: element.attribute("remote-tag").map(str::to_owned),
        direction,
        state,
        state_event: state_element.attribute("event").map(str::to_owned),
        state_code,
        duration,
        local: participant("local"),
        remote: participant("remote"),
    })
}

/// An element of the document, names reduced to their local part.
#[derive(Debug, Default)]
struct Element {
    local_name: String,
    /// Whether the element is in the dialog-info namespace, or in no namespace at all (some PBXs
    /// leave out `xmlns`). Elements of other namespaces are extensions and are ignored.
    in_dialog_namespace: bool,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn is(&self, local_name: &str) -> bool {
        self.in_dialog_namespace && self.local_name == local_name
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(attribute, _)| attribute == name)
            .map(|(_, value)| value.as_str())
    }

    fn children_named<'a>(&'a self, local_name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |child| child.is(local_name))
    }
}

/// An element still open while its content is read.
struct Open {
    qualified_name: String,
    element: Element,
    /// How many namespace bindings this element added.
    bindings: usize,
}

fn xml_error(offset: usize, reason: &'static str) -> DialogInfoError {
    DialogInfoError::Xml { offset, reason }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || "-_.:".contains(c)
}

fn parse_xml(input: &str) -> Result<Element, DialogInfoError> {
    let mut position = 0;
    let mut open: Vec<Open> = Vec::new();
    let mut bindings: Vec<(String, String)> = Vec::new();
    let mut root: Option<Element> = None;
    let mut element_count = 0;

    while position < input.len() {
        let rest = input.get(position..).unwrap_or_default();
        if !rest.starts_with('<') {
            let end = rest.find('<').unwrap_or(rest.len());
            let raw = rest.get(..end).unwrap_or_default();
            match open.last_mut() {
                Some(current) => current
                    .element
                    .text
                    .push_str(&decode_entities(raw, position)?),
                None if raw.trim().is_empty() => {}
                None => return Err(xml_error(position, "text outside the root element")),
            }
            position += end;
            continue;
        }

        if let Some(after) = rest.strip_prefix("<?") {
            let end = after
                .find("?>")
                .ok_or_else(|| xml_error(position, "unterminated <?"))?;
            position += 2 + end + 2;
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let end = after
                .find("-->")
                .ok_or_else(|| xml_error(position, "unterminated comment"))?;
            position += 4 + end + 3;
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after
                .find("]]>")
                .ok_or_else(|| xml_error(position, "unterminated CDATA"))?;
            let current = open
                .last_mut()
                .ok_or_else(|| xml_error(position, "CDATA outside the root element"))?;
            current
                .element
                .text
                .push_str(after.get(..end).unwrap_or_default());
            position += 9 + end + 3;
        } else if rest.starts_with("<!") {
            return Err(xml_error(
                position,
                "DOCTYPE and declarations are not supported",
            ));
        } else if let Some(after) = rest.strip_prefix("</") {
            let name_length = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
            let name = after.get(..name_length).unwrap_or_default();
            let tail = after.get(name_length..).unwrap_or_default();
            let close = tail.trim_start();
            if !close.starts_with('>') {
                return Err(xml_error(position, "malformed end tag"));
            }
            let closed = open
                .pop()
                .ok_or_else(|| xml_error(position, "end tag without start tag"))?;
            if closed.qualified_name != name {
                return Err(xml_error(position, "end tag does not match start tag"));
            }
            bindings.truncate(bindings.len().saturating_sub(closed.bindings));
            attach(closed.element, &mut open, &mut root, position)?;
            position += 2 + name_length + (tail.len() - close.len()) + 1;
        } else {
            element_count += 1;
            if element_count > MAX_ELEMENTS {
                return Err(DialogInfoError::TooManyElements);
            }
            if open.len() >= MAX_DEPTH {
                return Err(DialogInfoError::TooDeep);
            }
            if root.is_some() {
                return Err(xml_error(position, "a second root element"));
            }
            let (tag, consumed) = read_start_tag(rest, position)?;
            let added = tag
                .attributes
                .iter()
                .filter_map(|(name, value)| {
                    if name == "xmlns" {
                        Some((String::new(), value.clone()))
                    } else {
                        name.strip_prefix("xmlns:")
                            .map(|prefix| (prefix.to_owned(), value.clone()))
                    }
                })
                .collect::<Vec<_>>();
            let added_count = added.len();
            bindings.extend(added);

            let (prefix, local_name) = match tag.name.split_once(':') {
                Some((prefix, local)) => (prefix, local),
                None => ("", tag.name.as_str()),
            };
            let namespace = bindings
                .iter()
                .rev()
                .find(|(bound, _)| bound == prefix)
                .map(|(_, uri)| uri.as_str());
            if namespace.is_none() && !prefix.is_empty() {
                return Err(xml_error(position, "undeclared namespace prefix"));
            }
            let in_dialog_namespace =
                namespace.is_none_or(|uri| uri.is_empty() || uri == DIALOG_INFO_NAMESPACE);
            let element = Element {
                local_name: local_name.to_owned(),
                in_dialog_namespace,
                attributes: tag
                    .attributes
                    .into_iter()
                    .filter(|(name, _)| name != "xmlns" && !name.starts_with("xmlns:"))
                    .collect(),
                children: Vec::new(),
                text: String::new(),
            };
            position += consumed;
            if tag.self_closing {
                bindings.truncate(bindings.len().saturating_sub(added_count));
                attach(element, &mut open, &mut root, position)?;
            } else {
                open.push(Open {
                    qualified_name: tag.name,
                    element,
                    bindings: added_count,
                });
            }
        }
    }

    if !open.is_empty() {
        return Err(xml_error(input.len(), "unclosed element"));
    }
    root.ok_or_else(|| xml_error(input.len(), "no root element"))
}

fn attach(
    element: Element,
    open: &mut [Open],
    root: &mut Option<Element>,
    position: usize,
) -> Result<(), DialogInfoError> {
    match open.last_mut() {
        Some(parent) => parent.element.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(xml_error(position, "a second root element")),
    }
    Ok(())
}

struct StartTag {
    name: String,
    attributes: Vec<(String, String)>,
    self_closing: bool,
}

/// Reads `<name attr="value" ...>` or `.../>` at the start of `text`; returns the tag and the bytes
/// it took.
fn read_start_tag(text: &str, offset: usize) -> Result<(StartTag, usize), DialogInfoError> {
    let mut position = 1;
    let take_name = |from: usize| {
        let rest = text.get(from..).unwrap_or_default();
        let length = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        (rest.get(..length).unwrap_or_default(), length)
    };
    let skip_space = |from: usize| {
        let rest = text.get(from..).unwrap_or_default();
        from + (rest.len() - rest.trim_start().len())
    };

    let (name, length) = take_name(position);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
        return Err(xml_error(offset, "invalid element name"));
    }
    position += length;
    let mut attributes: Vec<(String, String)> = Vec::new();
    loop {
        let after_space = skip_space(position);
        let rest = text.get(after_space..).unwrap_or_default();
        if rest.starts_with("/>") {
            return Ok((
                StartTag {
                    name: name.to_owned(),
                    attributes,
                    self_closing: true,
                },
                after_space + 2,
            ));
        }
        if rest.starts_with('>') {
            return Ok((
                StartTag {
                    name: name.to_owned(),
                    attributes,
                    self_closing: false,
                },
                after_space + 1,
            ));
        }
        if after_space == position {
            return Err(xml_error(
                offset + position,
                "attributes must be separated by whitespace",
            ));
        }
        let (attribute, length) = take_name(after_space);
        if attribute.is_empty() {
            return Err(xml_error(offset + after_space, "invalid attribute"));
        }
        position = skip_space(after_space + length);
        if !text.get(position..).unwrap_or_default().starts_with('=') {
            return Err(xml_error(offset + position, "attribute without value"));
        }
        position = skip_space(position + 1);
        let quote = match text.get(position..).and_then(|rest| rest.chars().next()) {
            Some(quote @ ('"' | '\'')) => quote,
            _ => {
                return Err(xml_error(
                    offset + position,
                    "attribute value must be quoted",
                ));
            }
        };
        let value_start = position + 1;
        let value_length = text
            .get(value_start..)
            .and_then(|rest| rest.find(quote))
            .ok_or_else(|| xml_error(offset + position, "unterminated attribute value"))?;
        let raw = text
            .get(value_start..value_start + value_length)
            .unwrap_or_default();
        if raw.contains('<') {
            return Err(xml_error(offset + value_start, "'<' in attribute value"));
        }
        if attributes.iter().any(|(existing, _)| existing == attribute) {
            return Err(xml_error(offset + after_space, "duplicate attribute"));
        }
        attributes.push((
            attribute.to_owned(),
            decode_entities(raw, offset + value_start)?,
        ));
        position = value_start + value_length + 1;
    }
}

/// Replaces the predefined entities and character references in `raw`.
fn decode_entities(raw: &str, offset: usize) -> Result<String, DialogInfoError> {
    let mut decoded = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(ampersand) = rest.find('&') {
        decoded.push_str(rest.get(..ampersand).unwrap_or_default());
        let after = rest.get(ampersand + 1..).unwrap_or_default();
        let end = after
            .find(';')
            .filter(|&end| end <= 10)
            .ok_or_else(|| xml_error(offset, "unterminated entity"))?;
        let entity = after.get(..end).unwrap_or_default();
        let character = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            reference => {
                let code = if let Some(hex) = reference.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(decimal) = reference.strip_prefix('#') {
                    decimal.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| xml_error(offset, "unknown entity"))?
            }
        };
        decoded.push(character);
        rest = after.get(end + 1..).unwrap_or_default();
    }
    decoded.push_str(rest);
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4235 4.1, first NOTIFY body.
    const RFC_EXAMPLE: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             version="0"
             state="full"
             entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
          local-tag="1928301774" direction="initiator">
    <state>trying</state>
  </dialog>
</dialog-info>
"#;

    #[test]
    fn reads_the_rfc_example() {
        let info = parse_dialog_info(RFC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(info.version, 0);
        assert_eq!(info.state, DocumentState::Full);
        assert_eq!(info.entity, "sip:alice@example.com");
        assert_eq!(info.dialogs.len(), 1);
        let dialog = &info.dialogs[0];
        assert_eq!(dialog.id, "as7d900as8");
        assert_eq!(dialog.call_id.as_deref(), Some("a84b4c76e66710"));
        assert_eq!(dialog.local_tag.as_deref(), Some("1928301774"));
        assert_eq!(dialog.remote_tag, None);
        assert_eq!(dialog.direction, Some(Direction::Initiator));
        assert_eq!(dialog.state, DialogState::Trying);
    }

    #[test]
    fn reads_participants_state_event_and_entities() {
        let body = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="12" state="partial" entity="sip:8001@pbx.example.com">
  <dialog id="d1" call-id="c1@pbx" remote-tag="r" local-tag="l" direction="recipient">
    <state event="remote-bye" code="200">terminated</state>
    <duration>274</duration>
    <local><identity display="Agent &amp; Co">sip:8001@pbx.example.com</identity><target uri="sip:8001@192.0.2.7:5060"/></local>
    <remote>
      <identity display='&quot;Li Lei&quot; &#x5F20;'>sip:+8613800000000@pbx.example.com</identity>
      <target uri="sip:+8613800000000@pbx.example.com"></target>
    </remote>
  </dialog>
</dialog-info>"#;
        let info = parse_dialog_info(body.as_bytes()).unwrap();
        assert_eq!(info.version, 12);
        assert_eq!(info.state, DocumentState::Partial);
        let dialog = &info.dialogs[0];
        assert_eq!(dialog.direction, Some(Direction::Recipient));
        assert_eq!(dialog.state, DialogState::Terminated);
        assert_eq!(dialog.state_event.as_deref(), Some("remote-bye"));
        assert_eq!(dialog.state_code, Some(200));
        assert_eq!(dialog.duration, Some(274));
        let local = dialog.local.as_ref().unwrap();
        assert_eq!(local.display_name.as_deref(), Some("Agent & Co"));
        assert_eq!(local.target.as_deref(), Some("sip:8001@192.0.2.7:5060"));
        let remote = dialog.remote.as_ref().unwrap();
        assert_eq!(
            remote.identity.as_deref(),
            Some("sip:+8613800000000@pbx.example.com")
        );
        assert_eq!(remote.display_name.as_deref(), Some("\"Li Lei\" \u{5f20}"));
    }

    #[test]
    fn namespace_prefixes_are_resolved_and_extensions_skipped() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by a PBX -->
<di:dialog-info xmlns:di="urn:ietf:params:xml:ns:dialog-info" xmlns:x="urn:example:ext" entity="sip:100@pbx" state="full" version="3">
  <di:dialog direction="recipient" id="a">
    <x:state>bogus</x:state>
    <di:state>early</di:state>
    <x:dialog id="ignored"/>
  </di:dialog>
</di:dialog-info>"#;
        let info = parse_dialog_info(body.as_bytes()).unwrap();
        assert_eq!(info.dialogs.len(), 1);
        assert_eq!(info.dialogs[0].state, DialogState::Early);
    }

    #[test]
    fn a_document_without_namespace_is_accepted() {
        let body = r#"<dialog-info version="1" state="full" entity="sip:100@pbx"><dialog id="x"><state><![CDATA[confirmed]]></state></dialog></dialog-info>"#;
        let info = parse_dialog_info(body.as_bytes()).unwrap();
        assert_eq!(info.dialogs[0].state, DialogState::Confirmed);
    }

    #[test]
    fn an_empty_full_document_has_no_dialogs() {
        let body = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="4" state="full" entity="sip:100@pbx"/>"#;
        assert!(
            parse_dialog_info(body.as_bytes())
                .unwrap()
                .dialogs
                .is_empty()
        );
    }

    #[test]
    fn a_document_in_another_namespace_is_not_dialog_info() {
        let body =
            r#"<dialog-info xmlns="urn:example:other" version="1" state="full" entity="e"/>"#;
        assert_eq!(
            parse_dialog_info(body.as_bytes()),
            Err(DialogInfoError::NotDialogInfo)
        );
    }

    #[test]
    fn unknown_states_and_missing_attributes_are_rejected() {
        let unknown_state = r#"<dialog-info version="1" state="full" entity="e"><dialog id="x"><state>ringing</state></dialog></dialog-info>"#;
        assert!(matches!(
            parse_dialog_info(unknown_state.as_bytes()),
            Err(DialogInfoError::InvalidValue { what: "state", .. })
        ));
        let no_version = r#"<dialog-info state="full" entity="e"/>"#;
        assert_eq!(
            parse_dialog_info(no_version.as_bytes()),
            Err(DialogInfoError::MissingAttribute {
                element: "dialog-info",
                attribute: "version"
            })
        );
        let no_state =
            r#"<dialog-info version="1" state="full" entity="e"><dialog id="x"/></dialog-info>"#;
        assert_eq!(
            parse_dialog_info(no_state.as_bytes()),
            Err(DialogInfoError::MissingState("x".into()))
        );
    }

    #[test]
    fn malformed_xml_is_rejected() {
        let cases = [
            "",
            "not xml",
            "<dialog-info version=\"1\" state=\"full\" entity=\"e\">",
            "<dialog-info version=1 state=\"full\" entity=\"e\"/>",
            "<dialog-info version=\"1\" state=\"full\" entity=\"e\"></dialog>",
            "<a:dialog-info version=\"1\" state=\"full\" entity=\"e\"/>",
            "<dialog-info version=\"1\" version=\"2\" state=\"full\" entity=\"e\"/>",
            "<dialog-info version=\"1\" state=\"full\" entity=\"&bogus;\"/>",
            "<dialog-info version=\"1\" state=\"full\" entity=\"e\"/><second/>",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><dialog-info version=\"1\" state=\"full\" entity=\"e\"/>",
            "<dialog-info version=\"1\"state=\"full\" entity=\"e\"/>",
        ];
        for case in cases {
            assert!(parse_dialog_info(case.as_bytes()).is_err(), "{case:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let body = format!(
            "<dialog-info version=\"1\" state=\"full\" entity=\"e\">{}{}</dialog-info>",
            "<x>".repeat(100),
            "</x>".repeat(100)
        );
        assert_eq!(
            parse_dialog_info(body.as_bytes()),
            Err(DialogInfoError::TooDeep)
        );
    }

    #[test]
    fn oversized_and_non_utf8_bodies_are_refused() {
        assert_eq!(
            parse_dialog_info(&vec![b' '; MAX_DOCUMENT_BYTES + 1]),
            Err(DialogInfoError::TooLarge)
        );
        assert_eq!(
            parse_dialog_info(b"<a>\xff</a>"),
            Err(DialogInfoError::NotUtf8)
        );
    }

    #[test]
    fn arbitrary_prefixes_of_a_document_never_panic() {
        for end in 0..RFC_EXAMPLE.len() {
            if let Some(prefix) = RFC_EXAMPLE.get(..end) {
                let _ = parse_dialog_info(prefix.as_bytes());
            }
        }
    }
}
