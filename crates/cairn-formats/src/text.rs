//! What iCalendar and vCard share: content lines folded at 75 octets, text escaping,
//! parameter quoting, and reading Graph's JSON leniently.
//!
//! Both formats descend from RFC 2425's "text/directory" profile, so one writer serves both.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use std::io::{self, Write};

/// Longest physical line in octets, CRLF excluded (RFC 5545 section 3.1, RFC 2425 5.8.1).
const FOLD_OCTETS: usize = 75;

/// Writes content lines (`NAME;PARAM=x:value`) folded and CRLF-terminated.
pub(crate) struct ContentWriter<W: Write> {
    w: W,
}

impl<W: Write> ContentWriter<W> {
    pub(crate) fn new(w: W) -> Self {
        Self { w }
    }

    pub(crate) fn into_inner(self) -> W {
        self.w
    }

    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// A line whose value is already in its wire form (escaped text, a date, a URI...).
    /// Parameter values are quoted as needed, except `TYPE`, a comma-separated list of
    /// tokens given by the caller.
    pub(crate) fn raw(
        &mut self,
        name: &str,
        params: &[(&str, &str)],
        value: &str,
    ) -> io::Result<()> {
        let mut line = String::with_capacity(name.len() + value.len() + 16);
        line.push_str(name);
        for (k, v) in params {
            line.push(';');
            line.push_str(k);
            line.push('=');
            if *k == "TYPE" {
                // A list of our own tokens (`WORK,VOICE`): quoting would make it one value.
                line.push_str(v);
            } else {
                line.push_str(&param_value(v));
            }
        }
        line.push(':');
        line.push_str(value);
        write_folded(&mut self.w, &line)
    }

    /// A line whose value is text, escaped here.
    pub(crate) fn text(
        &mut self,
        name: &str,
        params: &[(&str, &str)],
        value: &str,
    ) -> io::Result<()> {
        self.raw(name, params, &escape_text(value))
    }
}

/// Writes `line` folded so that no physical line exceeds 75 octets, never splitting a UTF-8
/// sequence; continuation lines start with one space.
///
/// A fold is moved back before a run of spaces or tabs when it can be, so that no physical
/// line ends in whitespace: readers that trim lines before unfolding (there are some) then
/// still get the value right.
pub(crate) fn write_folded(w: &mut impl Write, line: &str) -> io::Result<()> {
    let mut start = 0;
    let mut used = 0; // octets on the current physical line
    for (i, c) in line.char_indices() {
        let n = c.len_utf8();
        if used + n > FOLD_OCTETS {
            let content = line[start..i].trim_end_matches([' ', '\t']);
            let moved = i - start - content.len();
            // Back off only if the line keeps some content and the next one still has room.
            let cut = if !content.is_empty() && 1 + moved + n <= FOLD_OCTETS {
                start + content.len()
            } else {
                i
            };
            w.write_all(&line.as_bytes()[start..cut])?;
            w.write_all(b"\r\n ")?;
            used = 1 + (i - cut);
            start = cut;
        }
        used += n;
    }
    w.write_all(&line.as_bytes()[start..])?;
    w.write_all(b"\r\n")
}

/// Escapes a TEXT value (RFC 5545 section 3.3.11): backslash, semicolon, comma and line
/// breaks. Any line break (CRLF, CR, LF) becomes `\n`; other control characters, which the
/// grammar does not allow, are dropped, except TAB.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: control characters dropped, double quotes (which cannot be escaped in
/// a parameter) turned into single quotes, and the whole quoted when it contains `:;,`.
pub(crate) fn param_value(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// A URI or other non-text value from the input: control characters and whitespace at the
/// ends removed, nothing escaped.
pub(crate) fn clean_value(s: &str) -> String {
    s.trim().chars().filter(|c| !c.is_control()).collect()
}

/// The string at `path` in `v`, if present and not blank.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.trim().is_empty())
}

/// The strings of the array at `key`, blanks left out.
pub(crate) fn strs<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Graph's `Edm.DateTimeOffset` (`2026-03-01T10:00:00Z`, up to 7 fractional digits).
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| parse_local(s).map(|t| t.and_utc()))
}

/// The wall-clock part of Graph's `dateTimeTimeZone.dateTime` (`2026-03-01T10:00:00.0000000`).
pub(crate) fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

/// UTC date-time form `20260301T100000Z`.
pub(crate) fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Plain text of an HTML body, for clients that only show `DESCRIPTION`/`NOTE`.
///
/// Not an HTML parser: tags are dropped, `head`/`style`/`script` content with them, block
/// ends and `<br>` become line breaks, common entities are decoded. Good enough for the
/// bodies Outlook writes; the HTML itself is kept where the format has a place for it.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&decode_entities(&rest[..lt]));
        }
        let after = &rest[lt + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        let Some(gt) = after.find('>').filter(|_| starts_tag) else {
            // A lone '<' is text.
            if skip_until.is_none() {
                out.push('<');
            }
            rest = after;
            continue;
        };
        let tag = after[..gt].trim();
        rest = &after[gt + 1..];
        if tag.starts_with("!--") && !tag.ends_with("--") {
            // A comment containing '>': skip to its end.
            match rest.find("-->") {
                Some(end) => rest = &rest[end + 3..],
                None => rest = "",
            }
            continue;
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(until) = skip_until {
            if closing && name == until {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "head" | "style" | "script" | "title" if !closing && !tag.ends_with('/') => {
                skip_until = Some(match name.as_str() {
                    "head" => "head",
                    "style" => "style",
                    "script" => "script",
                    _ => "title",
                });
            }
            "br" => out.push('\n'),
            "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table"
            | "ul" | "ol" | "blockquote"
                if closing =>
            {
                out.push('\n')
            }
            "td" | "th" if closing => out.push('\t'),
            _ => {}
        }
    }
    if skip_until.is_none() {
        out.push_str(&decode_entities(rest));
    }
    tidy_lines(&out)
}

/// Collapses runs of spaces inside lines, trims lines, keeps at most one empty line in a row.
fn tidy_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.lines() {
        let words: Vec<&str> = line
            .split([' ', '\u{a0}', '\t'])
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(&words.join(" "));
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.replace(['\r', '\n'], " ");
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &after[..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(line: &str) -> String {
        let mut out = Vec::new();
        write_folded(&mut out, line).unwrap();
        String::from_utf8(out).expect("folding keeps UTF-8 sequences whole")
    }

    #[test]
    fn short_lines_are_not_folded() {
        assert_eq!(folded("SUMMARY:Lunch"), "SUMMARY:Lunch\r\n");
    }

    #[test]
    fn folding_keeps_lines_within_75_octets_and_unfolds_to_the_original() {
        for line in [
            format!("DESCRIPTION:{}", "a".repeat(300)),
            format!("SUMMARY:{}", "会議の議事録".repeat(20)),
            format!("SUMMARY:{}", "✈️🎉é".repeat(40)),
            "X:".to_string() + &"b".repeat(73),
        ] {
            let out = folded(&line);
            assert!(out.ends_with("\r\n"));
            for physical in out.trim_end_matches("\r\n").split("\r\n") {
                assert!(
                    physical.len() <= 75,
                    "{} octets: {physical:?}",
                    physical.len()
                );
            }
            let unfolded = out.trim_end_matches("\r\n").replace("\r\n ", "");
            assert_eq!(unfolded, line);
        }
    }

    #[test]
    fn folds_do_not_leave_whitespace_at_the_end_of_a_line() {
        let line = format!("DESCRIPTION:{}end", "word ".repeat(60));
        let out = folded(&line);
        for physical in out.trim_end_matches("\r\n").split("\r\n") {
            assert!(physical.len() <= 75);
            assert!(
                !physical.ends_with(' ') || physical.trim().is_empty(),
                "{physical:?}"
            );
        }
        assert_eq!(out.trim_end_matches("\r\n").replace("\r\n ", ""), line);
        // Nothing but spaces: folded where it must be.
        let spaces = format!("X:{}", " ".repeat(200));
        let out = folded(&spaces);
        assert_eq!(out.trim_end_matches("\r\n").replace("\r\n ", ""), spaces);
    }

    #[test]
    fn a_line_of_exactly_75_octets_stays_whole() {
        let line = "X:".to_string() + &"b".repeat(73);
        assert_eq!(folded(&line), format!("{line}\r\n"));
        let longer = line.clone() + "c";
        assert_eq!(folded(&longer), format!("{line}\r\n c\r\n"));
    }

    #[test]
    fn text_escaping_covers_the_special_characters_and_line_breaks() {
        assert_eq!(
            escape_text("a\\b;c,d\r\ne\nf\rg\u{7}h\ti"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng".to_string() + "h\ti"
        );
    }

    #[test]
    fn parameter_values_are_quoted_when_needed_and_never_contain_quotes() {
        assert_eq!(param_value("Jürgen Weiß"), "Jürgen Weiß");
        assert_eq!(param_value("O'Hara, Margaret"), "\"O'Hara, Margaret\"");
        assert_eq!(param_value("say \"hi\": now"), "\"say 'hi': now\"");
    }

    #[test]
    fn graph_times_parse_with_seven_fractional_digits() {
        let t = parse_local("2026-03-01T10:15:00.0000000").unwrap();
        assert_eq!(t.to_string(), "2026-03-01 10:15:00");
        let i = parse_instant("2017-04-21T10:00:00.1234567Z").unwrap();
        assert_eq!(utc_stamp(i), "20170421T100000Z");
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn html_becomes_readable_text() {
        let html = "<html><head><meta charset=\"utf-8\"><style>p{color:red}</style></head>\
            <body><p>Café &amp; <b>bar</b>&nbsp;&lt;3</p><p>Line&#32;two<br>three &#x263A;</p>\
            <!-- a > comment --></body></html>";
        assert_eq!(html_to_text(html), "Café & bar <3\nLine two\nthree ☺");
    }

    #[test]
    fn html_without_tags_is_returned_tidied() {
        assert_eq!(html_to_text("  plain   text  "), "plain text");
        assert_eq!(html_to_text("a < b and c > d"), "a < b and c > d");
    }
}
