//! The text part of an email, derived from its HTML: paragraphs and line breaks kept, links
//! written out, tags dropped, entities decoded.

/// Elements whose content is not text.
const SKIPPED: [&str; 4] = ["head", "style", "script", "title"];
/// Elements that end a line (or a paragraph).
const BLOCKS: [&str; 14] = [
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "blockquote",
];

pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut link: Option<String> = None;
    while let Some(open) = rest.find('<') {
        push_text(&mut out, &rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            push_text(&mut out, &rest[open..]);
            rest = "";
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !closing && SKIPPED.contains(&name.as_str()) {
            let end = format!("</{name}");
            match rest.to_ascii_lowercase().find(&end) {
                Some(i) => rest = rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]),
                None => rest = "",
            }
            continue;
        }
        match (name.as_str(), closing) {
            ("br", _) => out.push('\n'),
            ("li", false) => {
                newline(&mut out, 1);
                out.push_str("- ");
            }
            ("a", false) => link = attribute(tag, "href"),
            ("a", true) => {
                if let Some(href) = link
                    .take()
                    .filter(|h| !h.starts_with('#') && !out.ends_with(h.as_str()))
                {
                    out.push_str(&format!(" ({href})"));
                }
            }
            (n, _) if BLOCKS.contains(&n) => newline(&mut out, if n == "p" || n.starts_with('h') { 2 } else { 1 }),
            _ => {}
        }
    }
    push_text(&mut out, rest);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut text = String::new();
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(&line);
    }
    text
}

/// Ends `out` with at least `n` line breaks (closing and opening tags do not add up).
fn newline(out: &mut String, n: usize) {
    let have = out
        .trim_end_matches(' ')
        .chars()
        .rev()
        .take_while(|c| *c == '\n')
        .count();
    for _ in have..n {
        out.push('\n');
    }
}

fn push_text(out: &mut String, raw: &str) {
    out.push_str(&decode_entities(&raw.replace(['\n', '\r'], " ")));
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let value = &tag[at..];
    let (quote, body) = match value.chars().next()? {
        q @ ('"' | '\'') => (Some(q), &value[1..]),
        _ => (None, value),
    };
    let end = match quote {
        Some(q) => body.find(q)?,
        None => body.find(char::is_whitespace).unwrap_or(body.len()),
    };
    Some(decode_entities(&body[..end]))
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                n if n.starts_with("#x") || n.starts_with("#X") => {
                    u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32)
                }
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            }?;
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_links_and_entities_survive() {
        let html = r#"<html><head><style>p{color:red}</style></head><body>
            <h1>Hola Juan</h1><p>Tu bono &amp; tus giros<br>te esperan.</p>
            <ul><li>Uno</li><li>Dos</li></ul>
            <p><a href="https://rushbet.com/promo?a=1&amp;b=2">Juega ahora</a> &#127920;</p></body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Hola Juan\n\nTu bono & tus giros\nte esperan.\n\n- Uno\n- Dos\n\nJuega ahora (https://rushbet.com/promo?a=1&b=2) 🎰"
        );
    }

    #[test]
    fn plain_text_passes_through() {
        assert_eq!(html_to_text("Just text, 5 < 6"), "Just text, 5 < 6");
    }
}
