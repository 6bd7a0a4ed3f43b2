//! Call Home (SOAP 1.2 envelope carrying one AML block) as devices post it: bounded parsing and building.
//! A pure codec: it must never do I/O, expand DTD entities, or hold more input than the limits below allow.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// Largest request body a device may send (the gateway answers 413 above it).
pub const MAX_BODY_BYTES: usize = 3_145_728;
/// Deepest element nesting accepted; real Call Home messages stay under 15.
pub const MAX_DEPTH: usize = 64;
/// Largest single attribute value or text run, attachment data excepted.
pub const MAX_TEXT_BYTES: usize = 1_048_576;
/// Most attachments one block may carry.
pub const MAX_ATTACHMENTS: usize = 64;
/// Most elements one document may hold.
pub const MAX_ELEMENTS: usize = 10_000;
/// Cap on the stored rendering of a block's `Content`.
pub const MAX_CONTENT_TEXT_BYTES: usize = 65_536;

pub const SOAP_ENV_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const AML_SESSION_NS: &str = "http://www.cisco.com/2004/01/aml-session";
pub const AML_BLOCK_NS: &str = "http://www.cisco.com/2004/01/aml-block";
/// Block type of a smart licensing request or response.
pub const SMART_LICENSING_TYPE: &str = "http://www.cisco.com/2017/01/callhome/smartlicensing";
/// Name of the attachment carrying the smart licensing JSON.
pub const SMART_LICENSING_ATTACHMENT: &str = "smart-licensing";

const SOAP_ROLE_NEXT: &str = "http://www.w3.org/2003/05/soap-envelope/role/next";
/// Longest device hint kept; anything longer is not a PID, serial or hostname.
const MAX_HINT_CHARS: usize = 255;

/// Why a body was refused. Each variant's text is meant for a plain-text 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallHomeError {
    #[error("body is {size} bytes, above the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("body is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("XML declaration names encoding {0:?}; only UTF-8 is accepted")]
    UnsupportedEncoding(String),
    #[error("document type declarations are refused")]
    Doctype,
    #[error("document type declaration defines entities; entity expansion is refused")]
    EntityDeclaration,
    #[error("document type declaration refers to an external entity or DTD; refused")]
    ExternalEntity,
    #[error("reference to undeclared entity &{0};")]
    UnknownEntity(String),
    #[error("invalid character reference &{0};")]
    InvalidCharRef(String),
    #[error("elements nest deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("document holds more than {max} elements")]
    TooManyElements { max: usize },
    #[error("attribute {name} is {size} bytes long, above the limit of {max}")]
    AttributeTooLarge {
        name: String,
        size: usize,
        max: usize,
    },
    #[error("text inside <{element}> is above the limit of {max} bytes")]
    TextTooLarge { element: String, max: usize },
    #[error("block holds more than {max} attachments")]
    TooManyAttachments { max: usize },
    #[error("root element is {found}, not a SOAP 1.2 Envelope in namespace {SOAP_ENV_NS}")]
    NotSoapEnvelope { found: String },
    #[error("SOAP Envelope has no Body")]
    MissingBody,
    #[error("SOAP Body has no aml-block Block")]
    MissingBlock,
    #[error("element {0} appears more than once where only one is allowed")]
    Duplicate(&'static str),
    #[error("block carries more than one smart-licensing attachment")]
    DuplicateSmartLicensing,
    #[error("document ends before the root element is closed")]
    Truncated,
    #[error("content outside the root element")]
    OutsideRoot,
    #[error("malformed XML at byte {position}: {reason}")]
    Malformed { position: u64, reason: String },
}

/// One parsed Call Home message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallHome {
    pub session: Session,
    pub block: Block,
}

/// The AML session header; empty strings when the header or a field is absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub to: String,
    pub from: String,
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// `Header/Type`, e.g. [`SMART_LICENSING_TYPE`] or `.../callhome/syslog`.
    pub message_type: String,
    /// `Header/CreationDate` as sent: devices use formats like `2008-01-17 16:31:33 GMT+0000`.
    pub creation_date: String,
    /// Compact rendering of `Content` for storing as an event, capped at [`MAX_CONTENT_TEXT_BYTES`].
    pub content_xml_text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub device: DeviceHint,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    pub name: String,
    /// The `type` attribute (`inline` in practice).
    pub kind: String,
    pub encoding: String,
    pub data: String,
}

/// Identity a message claims in its `Content`; unauthenticated, good for display and matching only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceHint {
    pub serial: Option<String>,
    pub pid: Option<String>,
    pub hostname: Option<String>,
}

impl CallHome {
    /// The smart licensing JSON, when this is a smart licensing message.
    pub fn smart_licensing_data(&self) -> Option<&str> {
        if self.block.message_type != SMART_LICENSING_TYPE {
            return None;
        }
        self.block
            .attachments
            .iter()
            .find(|a| a.name == SMART_LICENSING_ATTACHMENT)
            .map(|a| a.data.as_str())
    }
}

/// Parses a Call Home body, refusing anything outside the limits documented on the constants.
pub fn parse(body: &[u8]) -> Result<CallHome, CallHomeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(CallHomeError::TooLarge {
            size: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| CallHomeError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    // The reader would otherwise see the byte order mark as text before the root.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Parser::default().run(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Soap,
    Session,
    Block,
    Other,
}

/// What an open element means, decided from its parent's role and its own expanded name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Envelope,
    SoapHeader,
    SoapBody,
    Session,
    To,
    From,
    MessageId,
    Block,
    BlockHeader,
    Type,
    CreationDate,
    Content,
    InContent,
    Attachments,
    Attachment,
    AttachmentName,
    AttachmentData,
    Ignored,
}

impl Role {
    fn child(parent: Option<Role>, ns: Ns, local: &str) -> Result<Role, CallHomeError> {
        let Some(parent) = parent else {
            return if ns == Ns::Soap && local == "Envelope" {
                Ok(Role::Envelope)
            } else {
                Err(CallHomeError::NotSoapEnvelope {
                    found: String::new(),
                })
            };
        };
        let role = match (parent, ns, local) {
            (Role::Envelope, Ns::Soap, "Header") => Role::SoapHeader,
            (Role::Envelope, Ns::Soap, "Body") => Role::SoapBody,
            (Role::SoapHeader, Ns::Session, "Session") => Role::Session,
            (Role::Session, Ns::Session, "To") => Role::To,
            (Role::Session, Ns::Session, "From") => Role::From,
            (Role::Session, Ns::Session, "MessageId") => Role::MessageId,
            (Role::SoapBody, Ns::Block, "Block") => Role::Block,
            (Role::Block, Ns::Block, "Header") => Role::BlockHeader,
            (Role::Block, Ns::Block, "Content") => Role::Content,
            (Role::Block, Ns::Block, "Attachments") => Role::Attachments,
            (Role::BlockHeader, Ns::Block, "Type") => Role::Type,
            (Role::BlockHeader, Ns::Block, "CreationDate") => Role::CreationDate,
            (Role::Attachments, Ns::Block, "Attachment") => Role::Attachment,
            (Role::Attachment, Ns::Block, "Name") => Role::AttachmentName,
            (Role::Attachment, Ns::Block, "Data") => Role::AttachmentData,
            (Role::Content | Role::InContent, _, _) => Role::InContent,
            _ => Role::Ignored,
        };
        Ok(role)
    }

    /// Elements that may appear once in their parent; a second one would make the message ambiguous.
    fn singleton_name(self) -> Option<&'static str> {
        Some(match self {
            Role::SoapHeader => "Header",
            Role::SoapBody => "Body",
            Role::Session => "Session",
            Role::To => "To",
            Role::From => "From",
            Role::MessageId => "MessageId",
            Role::Block => "Block",
            Role::BlockHeader => "Block/Header",
            Role::Type => "Type",
            Role::CreationDate => "CreationDate",
            Role::Content => "Content",
            Role::Attachments => "Attachments",
            Role::AttachmentName => "Attachment/Name",
            Role::AttachmentData => "Attachment/Data",
            _ => return None,
        })
    }
}

struct Frame {
    role: Role,
    /// Local and qualified names, kept only inside `Content` where they are rendered and matched.
    local: String,
    qname: String,
}

/// Attachment data keeps CDATA sections and references verbatim but drops the
/// whitespace that pretty-printers put in plain text at either edge of the element.
#[derive(Default)]
struct DataBuilder {
    data: String,
    /// Trailing whitespace of the last plain text run, kept only if more content follows.
    pending_ws: String,
}

impl DataBuilder {
    fn raw_text(&mut self, s: &str) {
        let s = if self.data.is_empty() {
            s.trim_start_matches(is_xml_space)
        } else {
            s
        };
        let body = s.trim_end_matches(is_xml_space);
        if !body.is_empty() {
            self.literal(body);
        }
        self.pending_ws.push_str(&s[body.len()..]);
    }

    fn literal(&mut self, s: &str) {
        self.data.push_str(&self.pending_ws);
        self.pending_ws.clear();
        self.data.push_str(s);
    }

    fn finish(self) -> String {
        self.data
    }
}

#[derive(Default)]
struct HintCandidates {
    device_id_pid: Option<String>,
    device_id_serial: Option<String>,
    chassis_serial: Option<String>,
    chassis_model: Option<String>,
    first_serial: Option<String>,
    first_model: Option<String>,
    hostname: Option<String>,
}

impl HintCandidates {
    fn observe(&mut self, local: &str, parent: &str, text: &str) {
        let value = trim_xml(text);
        if value.is_empty() || value.chars().count() > MAX_HINT_CHARS {
            return;
        }
        match local {
            "DeviceId" => {
                // Call Home writes `PID@C@SERIAL`; the middle part is a fixed marker.
                if let (Some((pid, _)), Some((_, serial))) =
                    (value.split_once('@'), value.rsplit_once('@'))
                {
                    set_once(&mut self.device_id_pid, pid);
                    set_once(&mut self.device_id_serial, serial);
                }
            }
            "SerialNumber" => {
                if parent == "Chassis" {
                    set_once(&mut self.chassis_serial, value);
                }
                set_once(&mut self.first_serial, value);
            }
            "Model" => {
                if parent == "Chassis" {
                    set_once(&mut self.chassis_model, value);
                }
                set_once(&mut self.first_model, value);
            }
            "Name" if parent == "SystemInfo" => set_once(&mut self.hostname, value),
            _ => {}
        }
    }

    fn finish(self) -> DeviceHint {
        DeviceHint {
            serial: self
                .device_id_serial
                .or(self.chassis_serial)
                .or(self.first_serial),
            pid: self
                .device_id_pid
                .or(self.chassis_model)
                .or(self.first_model),
            hostname: self.hostname,
        }
    }
}

fn set_once(slot: &mut Option<String>, value: &str) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value.to_string());
    }
}

#[derive(Default)]
struct Parser {
    stack: Vec<Frame>,
    elements: usize,
    root_closed: bool,
    seen: Vec<Role>,
    /// Text since the last tag; bounded by [`MAX_TEXT_BYTES`].
    text: String,
    data: Option<DataBuilder>,
    session: Session,
    message_type: String,
    creation_date: String,
    content: Option<String>,
    content_truncated: bool,
    attachments: Vec<Attachment>,
    hints: HintCandidates,
}

impl Parser {
    fn run(mut self, input: &str) -> Result<CallHome, CallHomeError> {
        let mut reader = NsReader::from_str(input);
        loop {
            let (ns, event) = match reader.read_resolved_event() {
                Ok((resolved, event)) => (classify(&resolved), event),
                Err(e) => {
                    return Err(CallHomeError::Malformed {
                        position: reader.error_position(),
                        reason: e.to_string(),
                    })
                }
            };
            let position = reader.buffer_position();
            match event {
                Event::Start(e) => self.open(ns, &e, position)?,
                Event::Empty(e) => {
                    self.open(ns, &e, position)?;
                    self.close()?;
                }
                Event::End(_) => self.close()?,
                Event::Text(t) => self.raw_text(&t.xml10_content())?,
                Event::CData(c) => self.literal_text(&c.xml10_content())?,
                Event::GeneralRef(r) => {
                    let name: &str = &r;
                    let resolved = resolve_reference(name, r.is_char_ref(), r.resolve_char_ref())?;
                    let mut buf = [0u8; 4];
                    self.literal_text(resolved.encode_utf8(&mut buf))?;
                }
                Event::DocType(d) => return Err(classify_doctype(&d)),
                Event::Decl(d) => {
                    if let Some(Ok(enc)) = d.encoding() {
                        let enc = enc.trim().to_ascii_lowercase();
                        if !matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                            return Err(CallHomeError::UnsupportedEncoding(truncate_chars(
                                &enc, 40,
                            )));
                        }
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        self.finish()
    }

    fn open(&mut self, ns: Ns, e: &BytesStart<'_>, position: u64) -> Result<(), CallHomeError> {
        if self.stack.is_empty() && self.root_closed {
            return Err(CallHomeError::OutsideRoot);
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(CallHomeError::TooManyElements { max: MAX_ELEMENTS });
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(CallHomeError::TooDeep { max: MAX_DEPTH });
        }
        let attrs = read_attributes(e, position)?;
        let local_name = e.local_name();
        let local = local_name.as_ref();
        let parent = self.stack.last().map(|f| f.role);
        let role = Role::child(parent, ns, local).map_err(|_| CallHomeError::NotSoapEnvelope {
            found: describe_name(ns, e),
        })?;
        self.flush_text();
        if let Some(name) = role.singleton_name() {
            if self.seen.contains(&role) {
                return Err(CallHomeError::Duplicate(name));
            }
            self.seen.push(role);
        }
        let mut frame = Frame {
            role,
            local: String::new(),
            qname: String::new(),
        };
        match role {
            Role::Content => self.content = Some(String::new()),
            Role::InContent => {
                frame.local = local.to_string();
                frame.qname = e.name().as_ref().to_string();
                let mut tag = format!("<{}", frame.qname);
                for (key, value) in &attrs {
                    tag.push(' ');
                    tag.push_str(key);
                    tag.push_str("=\"");
                    tag.push_str(&escape_attribute(value));
                    tag.push('"');
                }
                tag.push('>');
                self.render(&tag);
            }
            Role::Attachment => {
                if self.attachments.len() >= MAX_ATTACHMENTS {
                    return Err(CallHomeError::TooManyAttachments {
                        max: MAX_ATTACHMENTS,
                    });
                }
                // Name and Data are singletons per attachment, not per block.
                self.seen
                    .retain(|r| !matches!(r, Role::AttachmentName | Role::AttachmentData));
                self.attachments.push(Attachment {
                    kind: attribute(&attrs, "type"),
                    ..Attachment::default()
                });
            }
            Role::AttachmentData => {
                if let Some(a) = self.attachments.last_mut() {
                    a.encoding = attribute(&attrs, "encoding");
                }
                self.data = Some(DataBuilder::default());
            }
            _ => {}
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), CallHomeError> {
        let text = std::mem::take(&mut self.text);
        self.store_text(&text);
        let Some(frame) = self.stack.pop() else {
            // The reader checks end tags against start tags, so this is unreachable
            // for well-formed input; refuse rather than guess.
            return Err(CallHomeError::OutsideRoot);
        };
        match frame.role {
            Role::InContent => {
                let parent = self.stack.last().map(|f| f.local.as_str()).unwrap_or("");
                self.hints.observe(&frame.local, parent, &text);
                self.render(&format!("</{}>", frame.qname));
            }
            Role::AttachmentData => {
                let data = self
                    .data
                    .take()
                    .map(DataBuilder::finish)
                    .unwrap_or_default();
                if let Some(a) = self.attachments.last_mut() {
                    a.data = data;
                }
            }
            _ => {}
        }
        if self.stack.is_empty() {
            self.root_closed = true;
        }
        Ok(())
    }

    fn raw_text(&mut self, s: &str) -> Result<(), CallHomeError> {
        if self.stack.is_empty() {
            return if s.chars().all(is_xml_space) {
                Ok(())
            } else {
                Err(CallHomeError::OutsideRoot)
            };
        }
        if let Some(data) = self.data.as_mut() {
            data.raw_text(s);
            return Ok(());
        }
        self.push_text(s)
    }

    fn literal_text(&mut self, s: &str) -> Result<(), CallHomeError> {
        if self.stack.is_empty() {
            return Err(CallHomeError::OutsideRoot);
        }
        if let Some(data) = self.data.as_mut() {
            data.literal(s);
            return Ok(());
        }
        self.push_text(s)
    }

    fn push_text(&mut self, s: &str) -> Result<(), CallHomeError> {
        if self.text.len() + s.len() > MAX_TEXT_BYTES {
            let element = self
                .stack
                .last()
                .map(|f| match f.role.singleton_name() {
                    Some(name) => name.to_string(),
                    None if !f.qname.is_empty() => truncate_chars(&f.qname, 64),
                    None => format!("{:?}", f.role),
                })
                .unwrap_or_default();
            return Err(CallHomeError::TextTooLarge {
                element,
                max: MAX_TEXT_BYTES,
            });
        }
        self.text.push_str(s);
        Ok(())
    }

    /// Hands the text gathered since the last tag to the element it belongs to.
    fn flush_text(&mut self) {
        let text = std::mem::take(&mut self.text);
        self.store_text(&text);
    }

    fn store_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let Some(role) = self.stack.last().map(|f| f.role) else {
            return;
        };
        match role {
            Role::To => self.session.to.push_str(text),
            Role::From => self.session.from.push_str(text),
            Role::MessageId => self.session.message_id.push_str(text),
            Role::Type => self.message_type.push_str(text),
            Role::CreationDate => self.creation_date.push_str(text),
            Role::AttachmentName => {
                if let Some(a) = self.attachments.last_mut() {
                    a.name.push_str(text);
                }
            }
            Role::Content | Role::InContent => {
                let trimmed = trim_xml(text);
                if !trimmed.is_empty() {
                    self.render(&escape_text(trimmed));
                }
            }
            _ => {}
        }
    }

    fn render(&mut self, piece: &str) {
        let Some(out) = self.content.as_mut() else {
            return;
        };
        if self.content_truncated {
            return;
        }
        let room = MAX_CONTENT_TEXT_BYTES - out.len();
        if piece.len() <= room {
            out.push_str(piece);
        } else {
            let mut cut = room;
            while !piece.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&piece[..cut]);
            self.content_truncated = true;
        }
    }

    fn finish(self) -> Result<CallHome, CallHomeError> {
        if !self.stack.is_empty() {
            return Err(CallHomeError::Truncated);
        }
        if !self.root_closed {
            return Err(CallHomeError::NotSoapEnvelope {
                found: "no element at all".to_string(),
            });
        }
        if !self.seen.contains(&Role::SoapBody) {
            return Err(CallHomeError::MissingBody);
        }
        if !self.seen.contains(&Role::Block) {
            return Err(CallHomeError::MissingBlock);
        }
        let mut attachments = self.attachments;
        for a in &mut attachments {
            a.name = trim_xml(&a.name).to_string();
            a.kind = trim_xml(&a.kind).to_string();
            a.encoding = trim_xml(&a.encoding).to_string();
        }
        let message_type = trim_xml(&self.message_type).to_string();
        if message_type == SMART_LICENSING_TYPE
            && attachments
                .iter()
                .filter(|a| a.name == SMART_LICENSING_ATTACHMENT)
                .count()
                > 1
        {
            return Err(CallHomeError::DuplicateSmartLicensing);
        }
        Ok(CallHome {
            session: Session {
                to: trim_xml(&self.session.to).to_string(),
                from: trim_xml(&self.session.from).to_string(),
                message_id: trim_xml(&self.session.message_id).to_string(),
            },
            block: Block {
                message_type,
                creation_date: trim_xml(&self.creation_date).to_string(),
                content_xml_text: self.content,
                attachments,
                device: self.hints.finish(),
            },
        })
    }
}

fn classify(resolved: &ResolveResult<'_>) -> Ns {
    match resolved {
        ResolveResult::Bound(ns) => match ns.0 {
            SOAP_ENV_NS => Ns::Soap,
            AML_SESSION_NS => Ns::Session,
            AML_BLOCK_NS => Ns::Block,
            _ => Ns::Other,
        },
        // An unbound prefix never names a protocol element; inside Content it is tolerated.
        ResolveResult::Unbound | ResolveResult::Unknown(_) => Ns::Other,
    }
}

fn describe_name(ns: Ns, e: &BytesStart<'_>) -> String {
    let ns_text = match ns {
        Ns::Soap => SOAP_ENV_NS,
        Ns::Session => AML_SESSION_NS,
        Ns::Block => AML_BLOCK_NS,
        Ns::Other => "another namespace",
    };
    truncate_chars(&format!("<{}> ({ns_text})", e.name().as_ref()), 200)
}

/// Refuses every DTD; the finer reason helps an operator tell an attack from a chatty device.
fn classify_doctype(dtd: &str) -> CallHomeError {
    if dtd.contains("SYSTEM") || dtd.contains("PUBLIC") {
        CallHomeError::ExternalEntity
    } else if dtd.contains("<!ENTITY") {
        CallHomeError::EntityDeclaration
    } else {
        CallHomeError::Doctype
    }
}

fn resolve_reference(
    name: &str,
    is_char_ref: bool,
    char_ref: Result<Option<char>, quick_xml::Error>,
) -> Result<char, CallHomeError> {
    if is_char_ref {
        return match char_ref {
            Ok(Some(c)) => Ok(c),
            _ => Err(CallHomeError::InvalidCharRef(truncate_chars(name, 32))),
        };
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => Err(CallHomeError::UnknownEntity(truncate_chars(name, 64))),
    }
}

/// Checks every attribute of an element against the size limit and returns them normalised.
fn read_attributes(
    e: &BytesStart<'_>,
    position: u64,
) -> Result<Vec<(String, String)>, CallHomeError> {
    let mut out = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| CallHomeError::Malformed {
            position,
            reason: err.to_string(),
        })?;
        let key = attr.key.as_ref();
        if attr.value.len() > MAX_TEXT_BYTES {
            return Err(CallHomeError::AttributeTooLarge {
                name: truncate_chars(key, 64),
                size: attr.value.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| CallHomeError::Malformed {
                position,
                reason: format!("attribute {}: {err}", truncate_chars(key, 64)),
            })?;
        out.push((key.to_string(), value.into_owned()));
    }
    Ok(out)
}

/// Unprefixed attributes are in no namespace, so matching the bare name is namespace-correct.
fn attribute(attrs: &[(String, String)], name: &str) -> String {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn trim_xml(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Characters XML 1.0 cannot carry at all become U+FFFD so the output stays well-formed.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A raw CR would be folded into LF by the reader; the reference survives.
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

fn escape_attribute(s: &str) -> String {
    escape_text(s)
        .replace('"', "&quot;")
        .replace('\t', "&#9;")
        .replace('\n', "&#10;")
}

/// Writes `data` as CDATA, splitting around `]]>` and CR, which a single section cannot hold.
fn push_cdata(out: &mut String, data: &str) {
    let safe = xml_safe(data);
    out.push_str("<![CDATA[");
    for (i, line) in safe.split('\r').enumerate() {
        if i > 0 {
            out.push_str("]]>&#13;<![CDATA[");
        }
        out.push_str(&line.replace("]]>", "]]]]><![CDATA[>"));
    }
    out.push_str("]]>");
}

/// Builds a Call Home envelope with one inline attachment, in the shape devices send and expect.
pub fn build(
    session: &Session,
    message_type: &str,
    creation_date: &str,
    attachment_name: &str,
    data: &str,
) -> String {
    let mut out = String::with_capacity(data.len() + 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<soap-env:Envelope xmlns:soap-env=\"{SOAP_ENV_NS}\">\n"
    ));
    out.push_str("<soap-env:Header>\n");
    out.push_str(&format!(
        "<aml-session:Session xmlns:aml-session=\"{AML_SESSION_NS}\" \
         soap-env:mustUnderstand=\"true\" soap-env:role=\"{SOAP_ROLE_NEXT}\">\n"
    ));
    for (name, value) in [
        ("To", &session.to),
        ("From", &session.from),
        ("MessageId", &session.message_id),
    ] {
        out.push_str(&format!(
            "<aml-session:{name}>{}</aml-session:{name}>\n",
            escape_text(value)
        ));
    }
    out.push_str("</aml-session:Session>\n</soap-env:Header>\n<soap-env:Body>\n");
    out.push_str(&format!(
        "<aml-block:Block xmlns:aml-block=\"{AML_BLOCK_NS}\">\n"
    ));
    out.push_str(&format!(
        "<aml-block:Header>\n<aml-block:Type>{}</aml-block:Type>\n\
         <aml-block:CreationDate>{}</aml-block:CreationDate>\n</aml-block:Header>\n",
        escape_text(message_type),
        escape_text(creation_date)
    ));
    out.push_str("<aml-block:Attachments>\n<aml-block:Attachment type=\"inline\">\n");
    out.push_str(&format!(
        "<aml-block:Name>{}</aml-block:Name>\n",
        escape_text(attachment_name)
    ));
    out.push_str("<aml-block:Data encoding=\"plain\">");
    push_cdata(&mut out, data);
    out.push_str("</aml-block:Data>\n");
    out.push_str("</aml-block:Attachment>\n</aml-block:Attachments>\n");
    out.push_str("</aml-block:Block>\n</soap-env:Body>\n</soap-env:Envelope>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::message::{decode_envelope, decode_payload, MessageType, RequestPayload};
    use proptest::prelude::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/callhome/",
                $name
            ))
            .as_slice()
        };
    }

    fn doc(block_inner: &str) -> String {
        format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\"><e:Body><b:Block xmlns:b=\"{AML_BLOCK_NS}\">\
             <b:Header><b:Type>t</b:Type></b:Header>{block_inner}</b:Block></e:Body></e:Envelope>"
        )
    }

    #[test]
    fn nexus_syslog_sample_parses() {
        let ch = parse(fixture!("callhome-syslog-nexus7000.xml")).unwrap();
        assert_eq!(
            ch.block.message_type,
            "http://www.cisco.com/2005/05/callhome/syslog"
        );
        assert_eq!(ch.block.creation_date, "2008-01-17 16:31:33 GMT+0000");
        assert_eq!(
            ch.session.to,
            "http://tools.cisco.com/neddce/services/DDCEService"
        );
        assert_eq!(ch.session.from, "http://www.cisco.com/appliance/uri");
        assert_eq!(ch.session.message_id, "1004:TXX12345678:478F82E6");
        assert_eq!(ch.block.device.serial.as_deref(), Some("TXX12345678"));
        assert_eq!(ch.block.device.pid.as_deref(), Some("N7K-C7010"));
        assert_eq!(ch.block.device.hostname.as_deref(), Some("dc3-test"));
        assert_eq!(ch.block.attachments.len(), 4);
        let first = &ch.block.attachments[0];
        assert_eq!(first.name, "show logging logfile | tail -n 200");
        assert_eq!(first.kind, "inline");
        assert_eq!(first.encoding, "plain");
        assert!(first.data.starts_with("2008 Jan 17 10:57:51 dc3-test"));
        // Inside CDATA, references stay literal.
        assert!(first.data.contains("hasn&apos;t caught signal 9"));
        assert_eq!(ch.block.attachments[2].data, "Current vdc is 1 - dc3-test ");
        assert!(ch.block.attachments[1].data.starts_with("\nvdc_id: 1"));
        assert_eq!(ch.smart_licensing_data(), None);
        let content = ch.block.content_xml_text.unwrap();
        assert!(content.starts_with(
            "<ch:CallHome xmlns:ch=\"http://www.cisco.com/2005/05/callhome\" version=\"1.0\">"
        ));
        assert!(content.contains("<ch:DeviceId>N7K-C7010@C@TXX12345678</ch:DeviceId>"));
        assert!(content.ends_with("</ch:CallHome>"));
    }

    #[test]
    fn register_fixture_carries_a_register_request() {
        let ch = parse(fixture!("register-request.xml")).unwrap();
        assert_eq!(ch.block.message_type, SMART_LICENSING_TYPE);
        assert_eq!(ch.session.message_id, "M1:FOX2305P81D:0001");
        assert_eq!(ch.block.content_xml_text, None);
        let data = ch.smart_licensing_data().unwrap();
        let envelope = decode_envelope(data).unwrap();
        assert_eq!(envelope.request_kind(), Some(MessageType::Register));
        assert_eq!(envelope.signature.der_bytes().unwrap().len(), 70);
        let RequestPayload::Register(p) =
            decode_payload(MessageType::Register, &envelope.payload).unwrap()
        else {
            panic!("not a register payload")
        };
        assert_eq!(p.common.sudi.udi_pid, "NCS560-4");
        assert_eq!(p.common.sudi.udi_serial_number, "FOX2305P81D");
        assert_eq!(p.common.hostname.as_deref(), Some("pe1-lab"));
        assert!(p.public_key.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }

    #[test]
    fn authorize_fixture_with_other_prefixes_parses() {
        let ch = parse(fixture!("authorize-request-prefixes.xml")).unwrap();
        assert_eq!(ch.block.message_type, SMART_LICENSING_TYPE);
        assert_eq!(ch.session.message_id, "M2:FOX2305P81D:0002");
        assert_eq!(ch.block.device.pid.as_deref(), Some("NCS560-4"));
        assert_eq!(ch.block.device.serial.as_deref(), Some("FOX2305P81D"));
        assert_eq!(ch.block.device.hostname.as_deref(), Some("pe2-lab & core"));
        let data = ch.smart_licensing_data().unwrap();
        assert!(data.starts_with('{') && data.ends_with('}'));
        let envelope = decode_envelope(data).unwrap();
        let RequestPayload::Authorize(p) =
            decode_payload(MessageType::Authorize, &envelope.payload).unwrap()
        else {
            panic!("not an authorize payload")
        };
        assert_eq!(p.common.hostname, None);
        let usage: Vec<(&str, u32)> = p
            .entitlements
            .iter()
            .map(|e| (e.tag.as_str(), e.count))
            .collect();
        assert_eq!(
            usage,
            [
                ("ESS-AC-100G-RTU-1", 1),
                ("N560-4-SYS-E-TRK", 1),
                ("A900-IMA8Z-TRK", 2),
                ("A900-IMA8CS1ZM-TRK", 1)
            ]
        );
    }

    #[test]
    fn hostile_fixtures_are_refused_each_for_its_own_reason() {
        let cases: Vec<(&str, &[u8], CallHomeError)> = vec![
            (
                "billion laughs",
                fixture!("hostile-billion-laughs.xml"),
                CallHomeError::EntityDeclaration,
            ),
            (
                "external entity",
                fixture!("hostile-xxe.xml"),
                CallHomeError::ExternalEntity,
            ),
            (
                "deep nesting",
                fixture!("hostile-deep-nesting.xml"),
                CallHomeError::TooDeep { max: MAX_DEPTH },
            ),
            (
                "100 attachments",
                fixture!("hostile-100-attachments.xml"),
                CallHomeError::TooManyAttachments {
                    max: MAX_ATTACHMENTS,
                },
            ),
            (
                "invalid UTF-8",
                fixture!("hostile-invalid-utf8.xml"),
                CallHomeError::InvalidUtf8 { offset: 0 },
            ),
            (
                "wrong envelope namespace",
                fixture!("hostile-wrong-namespace.xml"),
                CallHomeError::NotSoapEnvelope {
                    found: String::new(),
                },
            ),
        ];
        let mut reasons = Vec::new();
        for (label, body, expected) in cases {
            let err = parse(body).expect_err(label);
            assert_eq!(
                std::mem::discriminant(&err),
                std::mem::discriminant(&expected),
                "{label}: {err}"
            );
            reasons.push(err.to_string());
        }
        let big_attr = doc(&format!(
            "<b:Content><x a=\"{}\"/></b:Content>",
            "A".repeat(2 * 1_048_576)
        ));
        let err = parse(big_attr.as_bytes()).unwrap_err();
        assert!(
            matches!(err, CallHomeError::AttributeTooLarge { ref name, size, .. } if name == "a" && size == 2 * 1_048_576)
        );
        reasons.push(err.to_string());
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        let err = parse(&huge).unwrap_err();
        assert_eq!(
            err,
            CallHomeError::TooLarge {
                size: MAX_BODY_BYTES + 1,
                max: MAX_BODY_BYTES
            }
        );
        reasons.push(err.to_string());
        let distinct: std::collections::HashSet<&String> = reasons.iter().collect();
        assert_eq!(distinct.len(), reasons.len(), "{reasons:#?}");
    }

    #[test]
    fn invalid_utf8_reports_the_offset() {
        let body = fixture!("hostile-invalid-utf8.xml");
        let CallHomeError::InvalidUtf8 { offset } = parse(body).unwrap_err() else {
            panic!("wrong error")
        };
        assert_eq!(&body[offset - 3..=offset], b"caf\xe9");
    }

    #[test]
    fn wrong_namespace_names_what_was_found() {
        let err = parse(fixture!("hostile-wrong-namespace.xml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "root element is <soap-env:Envelope> (another namespace), not a SOAP 1.2 \
             Envelope in namespace http://www.w3.org/2003/05/soap-envelope"
        );
    }

    #[test]
    fn any_doctype_is_refused_even_without_entities() {
        let body = format!("<!DOCTYPE e:Envelope>{}", doc(""));
        assert_eq!(parse(body.as_bytes()), Err(CallHomeError::Doctype));
    }

    #[test]
    fn undeclared_and_bad_references_are_refused() {
        let body = doc("<b:Content><x>&xxe;</x></b:Content>");
        assert_eq!(
            parse(body.as_bytes()),
            Err(CallHomeError::UnknownEntity("xxe".into()))
        );
        let body = doc("<b:Content><x>&#0;</x></b:Content>");
        assert_eq!(
            parse(body.as_bytes()),
            Err(CallHomeError::InvalidCharRef("#0".into()))
        );
        let body = doc("<b:Content><x a=\"&xxe;\"/></b:Content>");
        assert!(matches!(
            parse(body.as_bytes()),
            Err(CallHomeError::Malformed { .. })
        ));
    }

    #[test]
    fn depth_limit_is_exact() {
        // Envelope, Body, Block, Content make four levels.
        let nest = |n: usize| {
            doc(&format!(
                "<b:Content>{}{}</b:Content>",
                "<x>".repeat(n),
                "</x>".repeat(n)
            ))
        };
        assert!(parse(nest(MAX_DEPTH - 4).as_bytes()).is_ok());
        assert_eq!(
            parse(nest(MAX_DEPTH - 3).as_bytes()),
            Err(CallHomeError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn element_count_is_bounded() {
        let body = doc(&format!(
            "<b:Content>{}</b:Content>",
            "<x/>".repeat(MAX_ELEMENTS)
        ));
        assert_eq!(
            parse(body.as_bytes()),
            Err(CallHomeError::TooManyElements { max: MAX_ELEMENTS })
        );
    }

    #[test]
    fn attachment_limit_is_exact() {
        let atts = |n: usize| {
            let one =
                "<b:Attachment type=\"inline\"><b:Name>n</b:Name><b:Data>d</b:Data></b:Attachment>";
            doc(&format!("<b:Attachments>{}</b:Attachments>", one.repeat(n)))
        };
        assert_eq!(
            parse(atts(MAX_ATTACHMENTS).as_bytes())
                .unwrap()
                .block
                .attachments
                .len(),
            MAX_ATTACHMENTS
        );
        assert!(matches!(
            parse(atts(MAX_ATTACHMENTS + 1).as_bytes()),
            Err(CallHomeError::TooManyAttachments { .. })
        ));
    }

    #[test]
    fn text_is_bounded_except_attachment_data() {
        let big = "x".repeat(MAX_TEXT_BYTES + 1);
        let in_type = format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\"><e:Body><b:Block xmlns:b=\"{AML_BLOCK_NS}\">\
             <b:Header><b:Type>{big}</b:Type></b:Header></b:Block></e:Body></e:Envelope>"
        );
        assert_eq!(
            parse(in_type.as_bytes()),
            Err(CallHomeError::TextTooLarge {
                element: "Type".into(),
                max: MAX_TEXT_BYTES
            })
        );
        let in_cdata = doc(&format!("<b:Content><x><![CDATA[{big}]]></x></b:Content>"));
        assert!(matches!(
            parse(in_cdata.as_bytes()),
            Err(CallHomeError::TextTooLarge { .. })
        ));
        let in_data = doc(&format!(
            "<b:Attachments><b:Attachment><b:Name>n</b:Name><b:Data><![CDATA[{big}]]></b:Data>\
             </b:Attachment></b:Attachments>"
        ));
        let ch = parse(in_data.as_bytes()).unwrap();
        assert_eq!(ch.block.attachments[0].data.len(), MAX_TEXT_BYTES + 1);
    }

    #[test]
    fn content_rendering_is_capped() {
        let item = "<item>0123456789abcdef0123456789abcdef</item>";
        let body = doc(&format!("<b:Content>{}</b:Content>", item.repeat(2000)));
        let ch = parse(body.as_bytes()).unwrap();
        let text = ch.block.content_xml_text.unwrap();
        assert_eq!(text.len(), MAX_CONTENT_TEXT_BYTES);
        assert!(text.starts_with(item));
    }

    #[test]
    fn structure_errors_are_named() {
        let no_body = format!("<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\"><e:Header/></e:Envelope>");
        assert_eq!(parse(no_body.as_bytes()), Err(CallHomeError::MissingBody));
        let no_block = format!("<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\"><e:Body/></e:Envelope>");
        assert_eq!(parse(no_block.as_bytes()), Err(CallHomeError::MissingBlock));
        let two_blocks = format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\" xmlns:b=\"{AML_BLOCK_NS}\"><e:Body>\
             <b:Block/><b:Block/></e:Body></e:Envelope>"
        );
        assert_eq!(
            parse(two_blocks.as_bytes()),
            Err(CallHomeError::Duplicate("Block"))
        );
        let truncated = doc("");
        let truncated = &truncated[..truncated.len() - "</e:Envelope>".len()];
        assert!(parse(truncated.as_bytes()).is_err());
        let trailing = format!("{}<more/>", doc(""));
        assert_eq!(parse(trailing.as_bytes()), Err(CallHomeError::OutsideRoot));
        assert!(matches!(
            parse(b"not xml at all"),
            Err(CallHomeError::OutsideRoot)
        ));
        assert!(matches!(
            parse(b""),
            Err(CallHomeError::NotSoapEnvelope { .. })
        ));
        assert!(matches!(
            parse(doc("<b:Content><x></y></b:Content>").as_bytes()),
            Err(CallHomeError::Malformed { .. })
        ));
        let latin1 = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}", doc(""));
        assert_eq!(
            parse(latin1.as_bytes()),
            Err(CallHomeError::UnsupportedEncoding("iso-8859-1".into()))
        );
    }

    #[test]
    fn second_smart_licensing_attachment_is_refused() {
        let body = format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\"><e:Body><b:Block xmlns:b=\"{AML_BLOCK_NS}\">\
             <b:Header><b:Type>{SMART_LICENSING_TYPE}</b:Type></b:Header><b:Attachments>\
             <b:Attachment><b:Name>smart-licensing</b:Name><b:Data>1</b:Data></b:Attachment>\
             <b:Attachment><b:Name>smart-licensing</b:Name><b:Data>2</b:Data></b:Attachment>\
             </b:Attachments></b:Block></e:Body></e:Envelope>"
        );
        assert_eq!(
            parse(body.as_bytes()),
            Err(CallHomeError::DuplicateSmartLicensing)
        );
    }

    #[test]
    fn tolerates_default_namespaces_entities_bom_and_extra_elements() {
        let body = format!(
            "\u{feff}<?xml version=\"1.0\"?>\n<!-- note -->\n<Envelope xmlns=\"{SOAP_ENV_NS}\">\
             <Header><Session xmlns=\"{AML_SESSION_NS}\"><To> a&amp;b&#x41;&#66; </To>\
             <Unknown>zzz</Unknown></Session></Header><Body><Extra/>\
             <Block xmlns=\"{AML_BLOCK_NS}\"><Header><Type>\n  x&lt;y\n</Type></Header>\
             <Attachments><Attachment type = 'inline'\n ><Name>n</Name>\
             <Data encoding=\"plain\">  one &amp; <![CDATA[two]]>  </Data></Attachment>\
             </Attachments></Block></Body></Envelope>\n"
        );
        let ch = parse(body.as_bytes()).unwrap();
        assert_eq!(ch.session.to, "a&bAB");
        assert_eq!(ch.session.message_id, "");
        assert_eq!(ch.block.message_type, "x<y");
        let a = &ch.block.attachments[0];
        assert_eq!(a.kind, "inline");
        assert_eq!(a.data, "one & two");
        assert_eq!(ch.smart_licensing_data(), None);
    }

    #[test]
    fn elements_with_the_right_local_name_in_another_namespace_are_ignored() {
        let body = format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV_NS}\"><e:Body>\
             <b:Block xmlns:b=\"urn:not-aml\"/></e:Body></e:Envelope>"
        );
        assert_eq!(parse(body.as_bytes()), Err(CallHomeError::MissingBlock));
    }

    #[test]
    fn smart_licensing_data_needs_the_type() {
        let session = Session::default();
        let body = build(
            &session,
            "http://x/other",
            "d",
            SMART_LICENSING_ATTACHMENT,
            "{}",
        );
        assert_eq!(parse(body.as_bytes()).unwrap().smart_licensing_data(), None);
        let body = build(
            &session,
            SMART_LICENSING_TYPE,
            "d",
            SMART_LICENSING_ATTACHMENT,
            "{}",
        );
        assert_eq!(
            parse(body.as_bytes()).unwrap().smart_licensing_data(),
            Some("{}")
        );
    }

    #[test]
    fn build_matches_the_golden_file() {
        let session = Session {
            to: "http://www.cisco.com/appliance/uri".into(),
            from: "http://satellite.example.net/Transportgateway/services/DeviceRequestHandler"
                .into(),
            message_id: "S1:FOX2305P81D:0001".into(),
        };
        let built = build(
            &session,
            SMART_LICENSING_TYPE,
            "2025-01-01 12:00:01 GMT+0000",
            SMART_LICENSING_ATTACHMENT,
            "{\"header\":{\"type\":\"register_response\",\"version\":1},\"payload\":\"a]]>b<&\"}",
        );
        assert_eq!(
            built,
            String::from_utf8_lossy(fixture!("built-response.xml"))
        );
    }

    #[test]
    fn build_then_parse_round_trips_awkward_data() {
        let session = Session {
            to: "a<b>&\"c'".into(),
            from: "line1\nline2\r\nline3".into(),
            message_id: "id".into(),
        };
        let data = "]]>\r\n]]]]>x\u{0}y\u{FFFE}<![CDATA[z]]>";
        let body = build(&session, "t&t", "2025-01-01 GMT+0000", "a<b", data);
        let ch = parse(body.as_bytes()).unwrap();
        assert_eq!(ch.session.to, session.to);
        assert_eq!(ch.session.from, session.from);
        assert_eq!(ch.block.message_type, "t&t");
        assert_eq!(ch.block.attachments[0].name, "a<b");
        assert_eq!(
            ch.block.attachments[0].data,
            "]]>\r\n]]]]>x\u{FFFD}y\u{FFFD}<![CDATA[z]]>"
        );
    }

    proptest! {
        #[test]
        fn build_parse_round_trip(
            to in "[ -~]{0,40}",
            id in "[a-zA-Z0-9:]{0,20}",
            kind in "[ -~\u{e9}\u{4e2d}]{0,40}",
            data in any::<String>(),
        ) {
            let session = Session { to: to.clone(), from: String::new(), message_id: id.clone() };
            let body = build(&session, &kind, "now", "smart-licensing", &data);
            let ch = parse(body.as_bytes()).unwrap();
            prop_assert_eq!(ch.session.to, to.trim());
            prop_assert_eq!(ch.session.message_id, id);
            prop_assert_eq!(ch.block.message_type, kind.trim());
            prop_assert_eq!(&ch.block.attachments[0].data, &xml_safe(&data));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mangled_fixture(cut in 0usize..2387, byte in any::<u8>()) {
            let mut body = fixture!("register-request.xml").to_vec();
            let at = cut.min(body.len() - 1);
            body[at] = byte;
            let _ = parse(&body);
        }
    }
}
