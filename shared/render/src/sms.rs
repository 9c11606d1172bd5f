//! SMS length as carriers count it: GSM-7 (160 characters in one segment, 153 per segment
//! when split; `^{}\[~]|€` take two) unless any character is outside it, then UCS-2 (70, 67
//! per segment, counted in UTF-16 units).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SmsEncoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsLength {
    pub encoding: SmsEncoding,
    /// Characters as the customer sees them.
    pub characters: usize,
    /// Units the carrier counts (septets for GSM-7, UTF-16 units for UCS-2).
    pub units: usize,
    pub segments: usize,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "\u{000C}^{}\\[~]|€";

pub fn sms_length(text: &str) -> SmsLength {
    let characters = text.chars().count();
    let septets: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (encoding, units, single, multi) = match septets {
        Some(n) => (SmsEncoding::Gsm7, n, 160, 153),
        None => (SmsEncoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let segments = match units {
        0 => 0,
        n if n <= single => 1,
        n => n.div_ceil(multi),
    };
    SmsLength {
        encoding,
        characters,
        units,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_text_fits_160_then_153_per_segment() {
        assert_eq!(sms_length(&"a".repeat(160)).segments, 1);
        assert_eq!(sms_length(&"a".repeat(161)).segments, 2);
        assert_eq!(sms_length(&"a".repeat(306)).segments, 2);
        assert_eq!(sms_length(&"a".repeat(307)).segments, 3);
        let spanish = sms_length("Hola Juan, ¿listo? Bono de 100€ en Rushbet. Responde BAJA");
        assert_eq!(spanish.encoding, SmsEncoding::Gsm7);
        assert_eq!(spanish.units, spanish.characters + 1);
    }

    #[test]
    fn one_character_outside_gsm_makes_it_ucs2() {
        let s = sms_length("Olá João 🎰");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!((s.characters, s.units, s.segments), (10, 11, 1));
        assert_eq!(sms_length(&"á".repeat(71)).segments, 2);
    }
}
