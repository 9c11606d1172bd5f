//! Rendering messages from templates. Templates are Liquid as marketers know it from
//! Customer.io and Braze (`{{ firstName | default: "amigo" }}`, `{% if %}`), rendered by the
//! `liquid` crate, and the seed's single-brace placeholders (`{firstName}`) work as written.
//!
//! A template cannot run away: the parser knows no loops, `assign` or `capture`, and only
//! filters whose output grows at most linearly with the template (no `replace`, `split`,
//! `join`), so rendering is bounded by the template's size (itself capped); the output is
//! capped as well. A missing variable renders empty or its `default`.

mod builtin;
mod sms;
mod text;

use std::sync::OnceLock;

use crm_core::definition::Channel;
use crm_core::identity::Identifier;
use crm_core::journey::JourneyType;
use crm_core::message::journey_type_str;
use crm_core::profile::Profile;
use crm_core::template::MessageTemplate;
use crm_core::values::Brand;
use liquid::model::{DisplayCow, KStringCow, State, Value};
use liquid::{Object, ObjectView, ValueView};

pub use builtin::built_ins;
pub use sms::{SmsEncoding, SmsLength, sms_length};
pub use text::html_to_text;

/// Largest template body and subject accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_SUBJECT_CHARS: usize = 400;
/// Largest rendered email body, and SMS text (SNS's own limit).
pub const MAX_EMAIL_BYTES: usize = 256 * 1024;
pub const MAX_SMS_CHARS: usize = 1600;

/// A template that cannot be used; `field` is `subject` or `body`, with the position in
/// that field when the parser reports one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TemplateError {
    pub field: &'static str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl TemplateError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// A parsed template, ready to render many times.
pub struct Compiled {
    pub channel: Channel,
    subject: Option<liquid::Template>,
    body: liquid::Template,
    /// The body places the unsubscribe link itself (`{{ unsubscribe_url }}`).
    pub places_unsubscribe: bool,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: Option<String>,
    /// HTML for email, the text for SMS.
    pub body: String,
    /// The text part of an email (derived from the HTML); the SMS text again for SMS.
    pub text: String,
}

fn parser() -> &'static liquid::Parser {
    static PARSER: OnceLock<liquid::Parser> = OnceLock::new();
    PARSER.get_or_init(|| {
        use liquid_lib::stdlib;
        liquid::ParserBuilder::new()
            .block(stdlib::IfBlock)
            .block(stdlib::UnlessBlock)
            .block(stdlib::CaseBlock)
            .block(stdlib::CommentBlock)
            .block(stdlib::RawBlock)
            .filter(stdlib::Default)
            .filter(stdlib::Upcase)
            .filter(stdlib::Downcase)
            .filter(stdlib::Capitalize)
            .filter(stdlib::Strip)
            .filter(stdlib::Lstrip)
            .filter(stdlib::Rstrip)
            .filter(stdlib::StripHtml)
            .filter(stdlib::StripNewlines)
            .filter(stdlib::Escape)
            .filter(stdlib::EscapeOnce)
            .filter(stdlib::Truncate)
            .filter(stdlib::TruncateWords)
            .filter(stdlib::UrlEncode)
            .filter(stdlib::Append)
            .filter(stdlib::Prepend)
            .filter(stdlib::Remove)
            .filter(stdlib::RemoveFirst)
            .filter(stdlib::ReplaceFirst)
            .filter(stdlib::Slice)
            .filter(stdlib::Size)
            .filter(stdlib::Plus)
            .filter(stdlib::Minus)
            .filter(stdlib::Times)
            .filter(stdlib::DividedBy)
            .filter(stdlib::Modulo)
            .filter(stdlib::Round)
            .filter(stdlib::Ceil)
            .filter(stdlib::Floor)
            .filter(stdlib::Abs)
            .filter(stdlib::Date)
            .build()
            .expect("the curated Liquid parser builds")
    })
}

/// Variables from the brand's own settings: the only ones `| raw` may print unescaped.
pub const BRAND_VARIABLES: [&str; 3] = ["brand", "brandName", "brand_name"];

/// A shift the conversion made: at this offset of the output, this many bytes were added
/// (negative: removed).
type Shift = (usize, isize);

/// Prepares a template for the parser:
/// - the seed's `{name}` placeholders become Liquid's `{{ name }}` (CSS braces, which never
///   hold a bare identifier, are left alone);
/// - in HTML (`escape`), every output is escaped (`| escape` appended), as Django and Jinja
///   do by default: a name or a click id prints as text, never as markup. An output that
///   ends with `| escape` or `| escape_once` is left as written; one that ends with
///   `| raw` prints unescaped, and only brand settings may be printed so;
/// - `{% raw %}…{% endraw %}` is copied as written.
///
/// Returns the converted text and its shifts, to map parser positions back to what the
/// marketer wrote; `Err` is (offset in `src`, message).
fn convert(src: &str, escape: bool) -> Result<(String, Vec<Shift>), (usize, String)> {
    let bytes = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 16);
    let mut shifts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &src[i..];
        if let Some(tag) = rest.strip_prefix("{%") {
            let (name, tag_end) = tag.find("%}").map_or(("", rest.len()), |e| (&tag[..e], e + 4));
            let name = name.trim_matches(|c: char| c == '-' || c.is_whitespace());
            let end = if name == "raw" {
                let close = rest[tag_end..]
                    .find("endraw")
                    .and_then(|e| rest[tag_end + e..].find("%}").map(|c| tag_end + e + c + 2));
                close.unwrap_or(rest.len())
            } else {
                tag_end
            };
            out.push_str(&rest[..end]);
            i += end;
            continue;
        }
        if let Some(tag) = rest.strip_prefix("{{") {
            let Some(close) = tag.find("}}") else {
                out.push_str(rest);
                break;
            };
            let inner = &tag[..close];
            let converted = output(inner, escape).map_err(|m| (i, m))?;
            out.push_str("{{");
            out.push_str(&converted);
            out.push_str("}}");
            if converted.len() != inner.len() {
                shifts.push((out.len() - 2, converted.len() as isize - inner.len() as isize));
            }
            i += close + 4;
            continue;
        }
        if bytes[i] == b'{' {
            let name_len = rest[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - 1);
            let name = &rest[1..1 + name_len];
            let closes = rest[1 + name_len..].starts_with('}') && !rest[2 + name_len..].starts_with('}');
            if closes && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                let converted = if escape {
                    format!("{{{{ {name} | escape }}}}")
                } else {
                    format!("{{{{ {name} }}}}")
                };
                shifts.push((out.len(), converted.len() as isize - (name_len as isize + 2)));
                out.push_str(&converted);
                i += name_len + 2;
                continue;
            }
        }
        let c = rest.chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    Ok((out, shifts))
}

/// One output's expression (between `{{` and `}}`), as the parser gets it.
fn output(inner: &str, escape: bool) -> Result<String, String> {
    let body_start = if inner.starts_with('-') { 1 } else { 0 };
    let body_end = if inner.len() > body_start && inner.ends_with('-') {
        inner.len() - 1
    } else {
        inner.len()
    };
    let (lead, body, trail) = (&inner[..body_start], &inner[body_start..body_end], &inner[body_end..]);
    let parts = split_outside_quotes(body, '|');
    let filter = |p: &str| p.split(':').next().unwrap_or_default().trim().to_owned();
    let last = parts.last().map(|p| filter(p)).unwrap_or_default();
    if parts.len() > 1 && last == "raw" {
        let head = &parts[..parts.len() - 1];
        if let Some(name) = head
            .iter()
            .enumerate()
            .flat_map(|(n, p)| variables(p, n > 0))
            .find(|v| !BRAND_VARIABLES.contains(&v.as_str()))
        {
            return Err(format!(
                "raw prints only brand settings ({}); `{name}` is always escaped",
                BRAND_VARIABLES.join(", ")
            ));
        }
        return Ok(format!("{lead}{}{trail}", head.join("|").trim_end().to_owned() + " "));
    }
    if !escape || (parts.len() > 1 && (last == "escape" || last == "escape_once")) {
        return Ok(inner.to_owned());
    }
    Ok(format!("{lead}{} | escape {trail}", body.trim_end()))
}

/// `s` split at `sep` where it stands outside quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quote, mut start) = (None, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c == sep => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The variables an output part names (their first segment: `a` of `a.b`); `filter` when
/// the part is a filter, whose own name is not a variable.
fn variables(part: &str, filter: bool) -> Vec<String> {
    let args = if filter {
        part.split_once(':').map_or("", |(_, a)| a)
    } else {
        part
    };
    let mut found = Vec::new();
    for piece in split_outside_quotes(args, ',') {
        let mut word = String::new();
        let mut quote = None;
        for c in piece.chars().chain([' ']) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, c)
                    if c.is_alphanumeric()
                        || c == '_'
                        || (c == '.' && !word.is_empty())
                        || c == '-' && !word.is_empty() =>
                {
                    word.push(c)
                }
                (None, _) => {
                    let root = word.split(['.', '[']).next().unwrap_or_default();
                    let keyword = matches!(root, "true" | "false" | "nil" | "null" | "empty" | "blank");
                    if root.starts_with(|c: char| c.is_alphabetic() || c == '_') && !keyword {
                        found.push(root.to_owned());
                    }
                    word.clear();
                }
            }
        }
    }
    found
}

/// `(line, column)` from the parser's ` --> L:C` marker, mapped back through the
/// placeholder conversion.
fn position(message: &str, converted: &str, shifts: &[Shift]) -> Option<(usize, usize)> {
    let rest = &message[message.find("--> ")? + 4..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let (line, col) = rest[..end].split_once(':')?;
    let (line, col): (usize, usize) = (line.parse().ok()?, col.parse().ok()?);
    let line_start: usize = converted
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let offset = line_start
        + converted[line_start..]
            .chars()
            .take(col.saturating_sub(1))
            .map(char::len_utf8)
            .sum::<usize>();
    let added_on_line: isize = shifts
        .iter()
        .filter(|(at, _)| *at >= line_start && *at < offset)
        .map(|(_, n)| n)
        .sum();
    Some((line, (col as isize - added_on_line).max(1) as usize))
}

/// The parser's message without its source excerpt: `expected Literal`, `Unknown tag …`.
fn short_message(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(|l| l.trim().trim_start_matches("liquid:").trim())
        .filter(|l| !l.is_empty() && !l.starts_with("-->") && !l.starts_with('|'))
        .filter(|l| {
            l.split_once('|')
                .is_none_or(|(n, _)| n.trim().parse::<usize>().is_err())
        })
        .map(|l| l.trim_start_matches("= "))
        .filter(|l| !l.is_empty() && !l.starts_with("available"))
        .collect();
    parts.join(" ")
}

/// `(line, column)` of a byte offset.
fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// Parses one field; `html` for an email body, whose outputs are escaped.
fn parse(field: &'static str, src: &str, html: bool) -> Result<liquid::Template, TemplateError> {
    let (converted, shifts) = convert(src, html).map_err(|(at, message)| {
        let (line, column) = line_column(src, at);
        TemplateError {
            field,
            line: Some(line),
            column: Some(column),
            message,
        }
    })?;
    parser().parse(&converted).map_err(|e| {
        let text = e.to_string();
        let pos = position(&text, &converted, &shifts);
        TemplateError {
            field,
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            message: short_message(&text),
        }
    })
}

/// Parses and checks a template: sizes, syntax, and a trial render with every variable
/// present and with none (a filter that fails on a missing value fails here, at save
/// time, rather than when a customer's message is due).
pub fn compile(t: &MessageTemplate) -> Result<Compiled, TemplateError> {
    if t.body.trim().is_empty() {
        return Err(TemplateError::new("body", "must not be empty"));
    }
    if t.body.len() > MAX_BODY_BYTES {
        return Err(TemplateError::new("body", "must be at most 64 KiB"));
    }
    let subject = match (t.channel, t.subject.as_deref().map(str::trim)) {
        (Channel::Email, None | Some("")) => {
            return Err(TemplateError::new("subject", "an email template needs a subject"));
        }
        (Channel::Email, Some(s)) if s.chars().count() > MAX_SUBJECT_CHARS => {
            return Err(TemplateError::new("subject", "must be at most 400 characters"));
        }
        (Channel::Email, Some(s)) => Some(parse("subject", s, false)?),
        (Channel::Sms, _) => None,
    };
    let compiled = Compiled {
        channel: t.channel,
        subject,
        body: parse("body", &t.body, t.channel == Channel::Email)?,
        places_unsubscribe: t.body.contains("unsubscribe_url") || t.body.contains("unsubscribeUrl"),
    };
    render(&compiled, &Variables::sample())?;
    render(&compiled, &Variables(NilDefault::new(Object::new())))?;
    Ok(compiled)
}

/// What a message is about, besides the customer.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub brand: &'a Brand,
    pub journey_type: JourneyType,
    pub stage: i32,
    /// The brand's display name (`BrandSettings::display_name`).
    pub brand_name: &'a str,
    /// The recipient's unsubscribe link (email); `None` in previews.
    pub unsubscribe_url: Option<&'a str>,
}

/// The variables a template sees. Each has a camelCase name (as in the seed's
/// `{firstName}`) and, where Liquid users expect it, a snake_case one.
#[derive(Debug)]
pub struct Variables(NilDefault);

/// `(camelCase, snake_case)` names of every variable, for the docs and the preview.
pub const VARIABLES: [(&str, &str); 14] = [
    ("firstName", "first_name"),
    ("lastName", "last_name"),
    ("fullName", "full_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("customerId", "customer_id"),
    ("clickId", "click_id"),
    ("userId", "user_id"),
    ("brand", "brand"),
    ("brandName", "brand_name"),
    ("journeyType", "journey_type"),
    ("stage", "stage"),
    ("revenue", "revenue"),
    ("unsubscribeUrl", "unsubscribe_url"),
];

impl Variables {
    pub fn new(customer: &Profile, ctx: Context<'_>) -> Self {
        let first = |pick: fn(&Identifier) -> Option<String>| customer.identifiers.iter().find_map(pick);
        let full = [customer.first_name.as_deref(), customer.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let revenue = customer
            .revenue
            .iter()
            .map(|(c, m)| format!("{m} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Every value is one line of printable text, whatever reached the profile.
        let line = |s: String| Value::scalar(crm_core::values::clean_text(&s));
        let values: [Option<Value>; 14] = [
            customer.first_name.clone().map(line),
            customer.last_name.clone().map(line),
            (!full.is_empty()).then(|| line(full)),
            customer.primary(Channel::Email).map(|e| line(e.value())),
            customer.primary(Channel::Sms).map(|p| line(p.value())),
            Some(Value::scalar(customer.id.to_string())),
            first(|i| match i {
                Identifier::ClickId(c) => Some(c.to_string()),
                _ => None,
            })
            .map(line),
            customer
                .identifiers
                .iter()
                .find_map(|i| match i {
                    Identifier::UserId { operator, user } if operator == ctx.brand => Some(user.to_string()),
                    _ => None,
                })
                .map(line),
            Some(Value::scalar(ctx.brand.to_string())),
            Some(line(ctx.brand_name.to_owned())),
            Some(Value::scalar(journey_type_str(ctx.journey_type))),
            Some(Value::scalar(i64::from(ctx.stage))),
            (!revenue.is_empty()).then(|| Value::scalar(revenue)),
            ctx.unsubscribe_url.map(|u| Value::scalar(u.to_owned())),
        ];
        let mut object = Object::new();
        for ((camel, snake), value) in VARIABLES.iter().zip(values) {
            if let Some(v) = value {
                object.insert((*camel).into(), v.clone());
                object.insert((*snake).into(), v);
            }
        }
        Self(NilDefault::new(object))
    }

    /// The seed's customer (Juan Pérez …) in `ctx`: a preview without a real customer.
    pub fn example(ctx: Context<'_>) -> Self {
        let values = [
            Value::scalar("Juan"),
            Value::scalar("Pérez"),
            Value::scalar("Juan Pérez"),
            Value::scalar("testuser@example.com"),
            Value::scalar("+51999888777"),
            Value::scalar("00000000-0000-7000-8000-000000000000"),
            Value::scalar("TEST_CLICK_001"),
            Value::scalar("rush_test_001"),
            Value::scalar(ctx.brand.to_string()),
            Value::scalar(ctx.brand_name.to_owned()),
            Value::scalar(journey_type_str(ctx.journey_type)),
            Value::scalar(i64::from(ctx.stage)),
            Value::scalar("100 USD"),
            Value::scalar(ctx.unsubscribe_url.unwrap_or("https://crm.example.com/u/…").to_owned()),
        ];
        let mut object = Object::new();
        for ((camel, snake), value) in VARIABLES.iter().zip(values) {
            object.insert((*camel).into(), value.clone());
            object.insert((*snake).into(), value);
        }
        Self(NilDefault::new(object))
    }

    /// Every variable set, for trial renders.
    fn sample() -> Self {
        let mut object = Object::new();
        for (camel, snake) in VARIABLES {
            let v = if camel == "stage" {
                Value::scalar(0i64)
            } else {
                Value::scalar("x")
            };
            object.insert(camel.into(), v.clone());
            object.insert(snake.into(), v);
        }
        Self(NilDefault::new(object))
    }
}

/// A template rendered as a preview (the admin API's and the console's): for a customer, or
/// for the example values when none is given; no unsubscribe link.
pub fn preview(
    template: &MessageTemplate,
    brand: &Brand,
    brand_name: &str,
    customer: Option<&Profile>,
) -> Result<Rendered, TemplateError> {
    let ctx = Context {
        brand,
        journey_type: template.journey_type,
        stage: template.stage,
        brand_name,
        unsubscribe_url: None,
    };
    let vars = match customer {
        Some(p) => Variables::new(p, ctx),
        None => Variables::example(ctx),
    };
    render(&compile(template)?, &vars)
}

/// Renders a compiled template. Fails only on a runtime error in the template (a filter
/// given a value it cannot take) or an oversized result.
pub fn render(c: &Compiled, vars: &Variables) -> Result<Rendered, TemplateError> {
    let run = |field, t: &liquid::Template| {
        t.render(&vars.0)
            .map_err(|e| TemplateError::new(field, short_message(&e.to_string())))
    };
    let subject = c
        .subject
        .as_ref()
        .map(|s| run("subject", s).map(|s| crm_core::values::clean_text(&s)))
        .transpose()?;
    let body = run("body", &c.body)?;
    let text = match c.channel {
        Channel::Email => {
            if body.len() > MAX_EMAIL_BYTES {
                return Err(TemplateError::new("body", "renders to more than 256 KiB"));
            }
            html_to_text(&body)
        }
        Channel::Sms => {
            if body.chars().count() > MAX_SMS_CHARS {
                return Err(TemplateError::new("body", "renders to more than 1600 characters"));
            }
            body.trim().to_owned()
        }
    };
    let body = if c.channel == Channel::Sms { text.clone() } else { body };
    Ok(Rendered { subject, body, text })
}

/// Appends the unsubscribe footer (HTML and text) in `language`, for a template that does
/// not place `{{ unsubscribe_url }}` itself.
pub fn append_unsubscribe_footer(r: &mut Rendered, url: &str, brand_name: &str, language: &str) {
    let (why, action) = match language.split(['-', '_']).next().unwrap_or_default() {
        "es" => (format!("Recibes este correo de {brand_name}."), "Darse de baja"),
        _ => (format!("You receive this email from {brand_name}."), "Unsubscribe"),
    };
    let html_why = escape_html(&why);
    let html_url = escape_html(url);
    let footer = format!("\n<p style=\"font-size:12px;color:#666\">{html_why} <a href=\"{html_url}\">{action}</a></p>");
    match r.body.rfind("</body>") {
        Some(i) => r.body.insert_str(i, &footer),
        None => r.body.push_str(&footer),
    }
    r.text = format!("{}\n\n{why} {action}: {url}", r.text.trim_end());
}

/// The double opt-in email: one link that confirms the address for the brand, in the
/// brand's language. Sent once per address and brand, before any marketing.
pub fn confirmation_email(brand_name: &str, language: &str, url: &str) -> Rendered {
    let (subject, ask, button, ignore) = match language.split(['-', '_']).next().unwrap_or_default() {
        "es" => (
            format!("Confirma tu correo para {brand_name}"),
            format!("Confirma que quieres recibir correos de {brand_name} en esta dirección."),
            "Confirmar mi correo",
            "Si no fuiste tú, ignora este mensaje: no te escribiremos más.",
        ),
        _ => (
            format!("Confirm your email for {brand_name}"),
            format!("Please confirm that you want emails from {brand_name} at this address."),
            "Confirm my email",
            "If this was not you, ignore this message: we will not write again.",
        ),
    };
    let body = format!(
        "<!doctype html><html><body style=\"font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1d1d1f\">\
         <p>{}</p><p><a href=\"{}\" style=\"display:inline-block;padding:12px 20px;background:#1d1d1f;color:#ffffff;text-decoration:none;border-radius:6px\">{button}</a></p>\
         <p style=\"font-size:12px;color:#666\">{}</p></body></html>",
        escape_html(&ask),
        escape_html(url),
        escape_html(ignore)
    );
    Rendered {
        subject: Some(crm_core::values::clean_text(&subject)),
        text: format!("{ask}\n\n{button}: {url}\n\n{ignore}"),
        body,
    }
}

/// Appends a brand's SMS opt-out line, unless the text already says it.
pub fn append_sms_opt_out(r: &mut Rendered, line: &str) {
    if !r.text.contains(line) {
        r.text = format!("{}\n{line}", r.text.trim_end());
        r.body = r.text.clone();
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The variables as Liquid sees them: every top-level name exists, and a missing one is nil
/// (Shopify and Braze render it empty; the `liquid` crate would fail).
#[derive(Debug)]
struct NilDefault {
    vars: Object,
    nil: Value,
}

impl NilDefault {
    fn new(vars: Object) -> Self {
        Self { vars, nil: Value::Nil }
    }
}

impl ValueView for NilDefault {
    fn as_debug(&self) -> &dyn std::fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        self.vars.render()
    }
    fn source(&self) -> DisplayCow<'_> {
        self.vars.source()
    }
    fn type_name(&self) -> &'static str {
        "object"
    }
    fn query_state(&self, state: State) -> bool {
        self.vars.query_state(state)
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        self.vars.to_kstr()
    }
    fn to_value(&self) -> Value {
        self.vars.to_value()
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for NilDefault {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.vars.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        ObjectView::keys(&self.vars)
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        ObjectView::values(&self.vars)
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        ObjectView::iter(&self.vars)
    }
    fn contains_key(&self, _: &str) -> bool {
        true
    }
    fn get<'s>(&'s self, key: &str) -> Option<&'s dyn ValueView> {
        Some(
            self.vars
                .get(key)
                .map_or(&self.nil as &dyn ValueView, |v| v as &dyn ValueView),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::journey::Milestone;
    use crm_core::profile::Touch;
    use crm_core::template::TemplateBrand;
    use crm_core::values::{CustomerId, Email};
    use time::macros::datetime;

    fn template(channel: Channel, subject: Option<&str>, body: &str) -> MessageTemplate {
        MessageTemplate {
            template_id: "t".into(),
            name: "t".into(),
            brand: TemplateBrand::Any,
            journey_type: JourneyType::Acquisition,
            stage: -1,
            channel,
            language: "en".into(),
            subject: subject.map(str::to_owned),
            body: body.into(),
            built_in: false,
            created_at: datetime!(2026-11-01 0:00 UTC),
            updated_at: datetime!(2026-11-01 0:00 UTC),
        }
    }
    fn juan(first: Option<&str>) -> Profile {
        let id = CustomerId::parse("0192f0c1-7b7e-7cc0-9b1a-3c3f2d6e8a10").unwrap();
        let mut touch = Touch::new(
            vec![Identifier::Email(Email::parse("juan@example.com").unwrap())],
            Brand::parse("rushbet").unwrap(),
            Milestone::Touched,
            datetime!(2026-11-01 0:00 UTC),
        );
        touch.names.first = first.map(str::to_owned);
        Profile::new(id, &touch)
    }
    fn render_for(t: &MessageTemplate, customer: &Profile) -> Rendered {
        let brand = Brand::parse("rushbet").unwrap();
        let ctx = Context {
            brand: &brand,
            journey_type: JourneyType::Acquisition,
            stage: -1,
            brand_name: "Rushbet",
            unsubscribe_url: None,
        };
        render(&compile(t).unwrap(), &Variables::new(customer, ctx)).unwrap()
    }

    #[test]
    fn seed_placeholders_and_liquid_render_the_same_variables() {
        let t = template(
            Channel::Email,
            Some("Hola {firstName}"),
            "<p>Hola {firstName}, {{ first_name | upcase }} — {{ brand }} {email}</p>",
        );
        let r = render_for(&t, &juan(Some("Juan")));
        assert_eq!(r.subject.as_deref(), Some("Hola Juan"));
        assert_eq!(r.body, "<p>Hola Juan, JUAN — rushbet juan@example.com</p>");
        assert_eq!(r.text, "Hola Juan, JUAN — rushbet juan@example.com");
    }

    #[test]
    fn html_bodies_escape_every_value_and_plain_text_fields_stay_one_line() {
        let mut customer = juan(Some("<a href=\"https://evil.example/x\">Claim</a>"));
        customer.last_name = Some("O'Brien & \"Sons\"\r\nBcc: x@evil.test".into());
        let t = template(
            Channel::Email,
            Some("Hi {firstName} {{ lastName }}"),
            "<p>{firstName}|{{ lastName | upcase }}|{{- fullName -}}|{{ firstName | escape }}|{{ brandName | raw }}</p>",
        );
        let r = render_for(&t, &customer);
        assert_eq!(
            r.body,
            "<p>&lt;a href=&quot;https://evil.example/x&quot;&gt;Claim&lt;/a&gt;|O&#39;BRIEN &amp; &quot;SONS&quot;  BCC: X@EVIL.TEST|\
             &lt;a href=&quot;https://evil.example/x&quot;&gt;Claim&lt;/a&gt; O&#39;Brien &amp; &quot;Sons&quot;  Bcc: x@evil.test|\
             &lt;a href=&quot;https://evil.example/x&quot;&gt;Claim&lt;/a&gt;|Rushbet</p>"
        );
        assert!(!r.body.contains("<a"), "{}", r.body);
        // The text part shows the values as the person wrote them, as text.
        assert!(
            r.text
                .starts_with("<a href=\"https://evil.example/x\">Claim</a>|O'BRIEN"),
            "{}",
            r.text
        );
        // A subject is a header: the value as text, on one line.
        assert_eq!(
            r.subject.as_deref(),
            Some("Hi <a href=\"https://evil.example/x\">Claim</a> O'Brien & \"Sons\"  Bcc: x@evil.test")
        );
        let sms = template(Channel::Sms, None, "Hola {firstName} {lastName}");
        assert!(!render_for(&sms, &customer).body.contains(['\r', '\n']));
    }

    #[test]
    fn raw_prints_brand_settings_only() {
        for body in [
            "{{ firstName | raw }}",
            "{{ brandName | append: lastName | raw }}",
            "{{ 'x' | default: email | raw }}",
            "<p>ok</p>\n  {{ user.name | raw }}",
        ] {
            let e = compile(&template(Channel::Email, Some("s"), body)).unwrap_err();
            assert!(e.message.starts_with("raw prints only brand settings"), "{body}: {e:?}");
        }
        let e = compile(&template(Channel::Email, Some("s"), "<p>ok</p>\n  {{ phone | raw }}")).unwrap_err();
        assert_eq!((e.field, e.line, e.column), ("body", Some(2), Some(3)));
        let e = compile(&template(Channel::Sms, None, "{{ phone | raw }}")).unwrap_err();
        assert_eq!(e.field, "body");
        let t = template(
            Channel::Email,
            Some("{{ brandName | raw }}"),
            "{{ brandName | upcase | raw }} {{ 'a|b' | raw }} {% raw %}{{ firstName }}{% endraw %}",
        );
        let r = render_for(&t, &juan(Some("Juan")));
        assert_eq!(r.body, "RUSHBET a|b {{ firstName }}");
        assert_eq!(r.subject.as_deref(), Some("Rushbet"));
    }

    #[test]
    fn missing_variables_render_their_default_or_empty_never_the_placeholder() {
        let t = template(
            Channel::Sms,
            None,
            r#"Hola {{ firstName | default: "amigo" }}[{firstName}][{{ lastName }}]{% if phone %}x{% endif %}"#,
        );
        assert_eq!(render_for(&t, &juan(None)).body, "Hola amigo[][]");
    }

    #[test]
    fn css_braces_and_liquid_literals_are_left_alone() {
        let (out, _) = convert(
            r#"p{margin:0} {{ x | default: "{y}" }} {% if a %}{b}{% endif %} {{c}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"p{margin:0} {{ x | default: "{y}" }} {% if a %}{{ b }}{% endif %} {{c}}"#
        );
    }

    #[test]
    fn syntax_errors_name_the_field_line_and_column() {
        let t = template(
            Channel::Email,
            Some("Hi"),
            "<p>{firstName} ok</p>\n<p>{{ firstName </p>",
        );
        let e = compile(&t).unwrap_err();
        assert_eq!((e.field, e.line, e.column), ("body", Some(2), Some(7)), "{e:?}");
        assert_eq!(e.message, "expected Literal");
        // Columns are the marketer's, not those of the converted `{{ firstName }}`.
        let t = template(Channel::Email, Some("Hi"), "{firstName} {{ firstName ");
        let e = compile(&t).unwrap_err();
        assert_eq!((e.line, e.column), (Some(1), Some(16)), "{e:?}");
        let t = template(
            Channel::Email,
            Some("Hi"),
            "{firstName}{firstName} {{ x | nope }}\n{firstName} {{ 1 +",
        );
        let e = compile(&t).unwrap_err();
        assert!(e.message.contains("nope"), "{e:?}");
        let t = template(Channel::Email, Some("{% if x %}"), "body");
        let e = compile(&t).unwrap_err();
        assert_eq!((e.field, e.line), ("subject", Some(1)));
        assert!(e.message.contains("endif"), "{}", e.message);
    }

    #[test]
    fn runaway_constructs_are_refused() {
        for body in [
            "{% for i in (1..100000000) %}x{% endfor %}",
            "{% assign a = 'x' %}",
            "{% capture a %}x{% endcapture %}",
            "{{ 'x' | replace: 'x', 'xxxxxxxx' }}",
            "{{ 'x' | split: '' | join: 'yy' }}",
        ] {
            assert!(compile(&template(Channel::Sms, None, body)).is_err(), "{body}");
        }
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(compile(&template(Channel::Sms, None, &big)).is_err());
        let long_sms = "{{ firstName | default: 'x' }}".to_owned() + &"y".repeat(1700);
        let t = template(Channel::Sms, None, &long_sms);
        assert_eq!(compile(&t).unwrap_err().message, "renders to more than 1600 characters");
    }

    #[test]
    fn a_filter_that_fails_on_missing_values_is_refused_at_save_time() {
        let t = template(Channel::Sms, None, "{{ stage | plus: 1 }} {{ firstName | plus: 1 }}");
        assert!(compile(&t).is_err());
    }

    #[test]
    fn email_templates_need_a_subject() {
        assert_eq!(
            compile(&template(Channel::Email, None, "x")).unwrap_err().field,
            "subject"
        );
    }

    #[test]
    fn every_built_in_template_compiles_and_personalises() {
        for t in built_ins() {
            let r = render_for(&t, &juan(Some("Juan")));
            assert!(r.body.contains("Juan"), "{}: {}", t.template_id, r.body);
            assert!(!r.body.contains('{'), "{}", t.template_id);
        }
        assert_eq!(built_ins().len(), 10);
    }
}
