//! Message templates as data, and the rule that picks one for a step. Rendering (Liquid)
//! lives in `crm-render`; this module only says which template a message uses.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::definition::{Channel, Step};
use crate::journey::JourneyType;
use crate::values::{Brand, Invalid};

/// The brand a template is for: one brand, or every brand (`*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TemplateBrand {
    Any,
    Brand(Brand),
}

impl TemplateBrand {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim() {
            "*" => Ok(Self::Any),
            other => Brand::parse(other).map(Self::Brand),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Brand(b) => b.as_str(),
        }
    }
    pub fn serves(&self, brand: &Brand) -> bool {
        match self {
            Self::Any => true,
            Self::Brand(b) => b == brand,
        }
    }
}

impl TryFrom<String> for TemplateBrand {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        Self::parse(&v).map_err(|e| e.message)
    }
}

impl From<TemplateBrand> for String {
    fn from(b: TemplateBrand) -> String {
        b.as_str().to_owned()
    }
}

/// A language tag as templates use it: `en`, `es`, `pt-br` (lowercase, 2-8 letters, one
/// optional region).
pub fn parse_language(raw: &str) -> Result<String, Invalid> {
    let v = raw.trim().to_ascii_lowercase().replace('_', "-");
    let mut parts = v.split('-');
    let ok_primary = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase()));
    let ok_rest = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok_primary && ok_rest && v.len() <= 16 {
        Ok(v)
    } else {
        Err(Invalid::new(
            "invalid_format",
            "language must be a tag like en, es or pt-br",
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageTemplate {
    pub template_id: String,
    pub name: String,
    pub brand: TemplateBrand,
    pub journey_type: JourneyType,
    pub stage: i32,
    pub channel: Channel,
    pub language: String,
    /// Email only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// HTML for email (a text part is derived), text for SMS.
    pub body: String,
    /// Shipped with the system; cannot be changed or deleted, only outranked.
    #[serde(default)]
    pub built_in: bool,
    #[serde(with = "crate::values::ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::values::ts")]
    pub updated_at: OffsetDateTime,
}

/// The template a step's message uses for `brand` in `language`: the step's own
/// `templateId` when it names one; otherwise the most specific template of the step's
/// journey type, stage and channel — the brand's in the language, the brand's in any
/// language, then one for every brand (`*`) in the language, then any `*` — saved templates
/// before built-in ones, the most recently updated first.
pub fn resolve<'a>(
    candidates: &'a [MessageTemplate],
    step: &Step,
    brand: &Brand,
    language: &str,
) -> Option<&'a MessageTemplate> {
    if let Some(id) = &step.template_id {
        return candidates
            .iter()
            .find(|t| &t.template_id == id && t.channel == step.channel);
    }
    candidates
        .iter()
        .filter(|t| {
            t.journey_type == step.journey_type
                && t.stage == step.stage
                && t.channel == step.channel
                && t.brand.serves(brand)
        })
        .max_by_key(|t| {
            (
                t.brand != TemplateBrand::Any,
                t.language == language,
                !t.built_in,
                t.updated_at,
            )
        })
}

/// A template as a person writes it (an API body, a console form): `field` gives each
/// field's text as sent. Checked field by field; the first wrong one is named. Whether the
/// body and subject compile is the renderer's to say.
pub fn template_from(
    field: impl Fn(&'static str) -> Option<String>,
    template_id: String,
    now: time::OffsetDateTime,
) -> Result<MessageTemplate, (&'static str, Invalid)> {
    let required = |name: &'static str| {
        field(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| (name, Invalid::new("missing", format!("{name} is required"))))
    };
    let journey_type = match required("journeyType")?.trim().to_ascii_lowercase().as_str() {
        "acquisition" => JourneyType::Acquisition,
        "retention" => JourneyType::Retention,
        _ => {
            let message = "journeyType must be acquisition or retention";
            return Err(("journeyType", Invalid::new("invalid_value", message)));
        }
    };
    let stage = field("stage")
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| ("stage", Invalid::new("missing", "stage is required (-1, 0, 1 or 2)")))?;
    if !crate::definition::is_known_stage(journey_type, stage) {
        let message = "stage must be acquisition -1 or 0, or retention 1 or 2";
        return Err(("stage", Invalid::new("unknown_stage", message)));
    }
    let brand = field("brand")
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "*".into());
    Ok(MessageTemplate {
        template_id,
        name: crate::values::clean_text(&required("name")?),
        brand: TemplateBrand::parse(&brand).map_err(|e| ("brand", e))?,
        journey_type,
        stage,
        channel: crate::definition::Channel::parse(&required("channel")?).map_err(|e| ("channel", e))?,
        language: parse_language(
            &field("language")
                .filter(|l| !l.trim().is_empty())
                .unwrap_or_else(|| "en".into()),
        )
        .map_err(|e| ("language", e))?,
        subject: field("subject").filter(|s| !s.trim().is_empty()),
        body: required("body")?,
        built_in: false,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::JourneyDefinition;
    use time::macros::datetime;

    fn template(id: &str, brand: &str, language: &str, built_in: bool) -> MessageTemplate {
        MessageTemplate {
            template_id: id.into(),
            name: id.into(),
            brand: TemplateBrand::parse(brand).unwrap(),
            journey_type: JourneyType::Acquisition,
            stage: -1,
            channel: Channel::Email,
            language: language.into(),
            subject: Some("Hi".into()),
            body: "Hi".into(),
            built_in,
            created_at: datetime!(2026-11-01 0:00 UTC),
            updated_at: datetime!(2026-11-01 0:00 UTC),
        }
    }

    #[test]
    fn the_most_specific_template_wins() {
        let welcome = JourneyDefinition::default_definition().steps[0].clone();
        let rushbet = Brand::parse("rushbet").unwrap();
        let mut all = vec![
            template("builtin-en", "*", "en", true),
            template("builtin-es", "*", "es", true),
        ];
        let pick = |all: &[MessageTemplate], lang| resolve(all, &welcome, &rushbet, lang).unwrap().template_id.clone();
        assert_eq!(pick(&all, "es"), "builtin-es");
        all.push(template("any-es", "*", "es", false));
        assert_eq!(pick(&all, "es"), "any-es");
        all.push(template("rush-en", "rushbet", "en", false));
        assert_eq!(pick(&all, "es"), "rush-en");
        all.push(template("rush-es", "rushbet", "es", false));
        assert_eq!(pick(&all, "es"), "rush-es");
        all.push(template("roo-es", "roobet", "es", false));
        assert_eq!(pick(&all, "es"), "rush-es");
    }

    #[test]
    fn a_step_naming_its_template_gets_exactly_that_one() {
        let mut step = JourneyDefinition::default_definition().steps[0].clone();
        step.template_id = Some("special".into());
        let all = vec![
            template("builtin-en", "*", "en", true),
            template("special", "*", "en", false),
        ];
        let rushbet = Brand::parse("rushbet").unwrap();
        assert_eq!(resolve(&all, &step, &rushbet, "en").unwrap().template_id, "special");
        step.template_id = Some("missing".into());
        assert!(resolve(&all, &step, &rushbet, "en").is_none());
    }

    #[test]
    fn languages_are_normalised_tags() {
        assert_eq!(parse_language("ES").unwrap(), "es");
        assert_eq!(parse_language("pt_BR").unwrap(), "pt-br");
        assert!(parse_language("english!").is_err());
        assert!(parse_language("e").is_err());
    }
}
