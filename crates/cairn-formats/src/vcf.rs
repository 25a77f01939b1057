//! Contacts as vCard, one file of cards per contact folder, from the Graph contact JSON a
//! backup holds.
//!
//! Version 3.0 (RFC 2426), not 4.0 (RFC 6350): 3.0 is the version every address book
//! imports reliably — Outlook, Apple Contacts, Google Contacts, Android, Thunderbird —
//! whereas Outlook and several phones still read 4.0 partially or not at all, and nothing
//! Graph holds needs 4.0's additions. Text is UTF-8 without `CHARSET` parameters, which 3.0
//! allows (the charset is the file's) and which the importers above expect.

use crate::text::{
    ContentWriter, clean_value, escape_text, parse_instant, str_at, strs, utc_stamp,
};
use crate::{ExportReport, FormatError};
use serde_json::Value;
use std::io::{self, Write};

const FORMAT: &str = "vCard";

/// Writes a vCard per Graph contact, streaming. Anything that is not a JSON object is
/// skipped and listed in the report; every contact object becomes a card, since even a
/// contact with a single field is worth keeping.
pub fn write_vcards<W: Write>(
    contacts: impl IntoIterator<Item = Value>,
    w: W,
) -> Result<ExportReport, FormatError> {
    let err = FormatError::write;
    let mut out = ContentWriter::new(io::BufWriter::new(w));
    let mut report = ExportReport::default();
    for (index, contact) in contacts.into_iter().enumerate() {
        if !contact.is_object() {
            report.skip(index, &contact, "not a JSON object".into());
            continue;
        }
        write_card(&contact, &mut out).map_err(err(FORMAT))?;
        report.written += 1;
    }
    out.into_inner()
        .into_inner()
        .map_err(|e| err(FORMAT)(e.into_error()))?
        .flush()
        .map_err(err(FORMAT))?;
    Ok(report)
}

/// The name a card is shown under: Graph's displayName, else the parts of the name, else
/// the first e-mail address, the company, or the id.
fn formatted_name(c: &Value) -> String {
    if let Some(d) = str_at(c, &["displayName"]) {
        return d.trim().to_string();
    }
    let parts: Vec<&str> = ["givenName", "middleName", "surname"]
        .iter()
        .filter_map(|k| str_at(c, &[k]))
        .map(str::trim)
        .collect();
    if !parts.is_empty() {
        return parts.join(" ");
    }
    first_email(c)
        .or_else(|| str_at(c, &["companyName"]))
        .or_else(|| str_at(c, &["id"]))
        .unwrap_or("Unnamed contact")
        .trim()
        .to_string()
}

fn first_email(c: &Value) -> Option<&str> {
    emails(c).next()
}

fn emails(c: &Value) -> impl Iterator<Item = &str> {
    c.get("emailAddresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| str_at(e, &["address"]))
}

/// A structured value (N, ADR, ORG): components escaped one by one, joined by `;`.
fn structured(c: &Value, parent: Option<&str>, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| {
            let v = match parent {
                Some(p) => str_at(c, &[p, k]),
                None => str_at(c, &[k]),
            };
            v.map(|s| escape_text(s.trim())).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn write_card(c: &Value, out: &mut ContentWriter<impl Write>) -> io::Result<()> {
    out.raw("BEGIN", &[], "VCARD")?;
    out.raw("VERSION", &[], "3.0")?;
    out.text("FN", &[], &formatted_name(c))?;
    out.raw(
        "N",
        &[],
        &structured(
            c,
            None,
            &["surname", "givenName", "middleName", "title", "generation"],
        ),
    )?;
    if let Some(n) = str_at(c, &["nickName"]) {
        out.text("NICKNAME", &[], n)?;
    }
    for (i, e) in emails(c).enumerate() {
        let types = if i == 0 { "INTERNET,PREF" } else { "INTERNET" };
        out.raw("EMAIL", &[("TYPE", types)], &escape_text(&clean_value(e)))?;
    }
    for p in strs(c, "businessPhones") {
        out.raw(
            "TEL",
            &[("TYPE", "WORK,VOICE")],
            &escape_text(&clean_value(p)),
        )?;
    }
    for p in strs(c, "homePhones") {
        out.raw(
            "TEL",
            &[("TYPE", "HOME,VOICE")],
            &escape_text(&clean_value(p)),
        )?;
    }
    if let Some(p) = str_at(c, &["mobilePhone"]) {
        out.raw(
            "TEL",
            &[("TYPE", "CELL,VOICE")],
            &escape_text(&clean_value(p)),
        )?;
    }
    // "Other" has no type of its own in 3.0; it is written without one.
    for (key, types) in [
        ("businessAddress", Some("WORK")),
        ("homeAddress", Some("HOME")),
        ("otherAddress", None),
    ] {
        // ADR: post office box; extended address; street; locality; region; code; country.
        let adr = structured(
            c,
            Some(key),
            &[
                "",
                "",
                "street",
                "city",
                "state",
                "postalCode",
                "countryOrRegion",
            ],
        );
        if adr.chars().any(|ch| ch != ';') {
            let params: Vec<(&str, &str)> = types.map(|t| ("TYPE", t)).into_iter().collect();
            out.raw("ADR", &params, &adr)?;
        }
    }
    let org = structured(c, None, &["companyName", "department"]);
    if org != ";" {
        out.raw("ORG", &[], org.trim_end_matches(';'))?;
    }
    if let Some(t) = str_at(c, &["jobTitle"]) {
        out.text("TITLE", &[], t)?;
    }
    if let Some(u) = str_at(c, &["businessHomePage"]) {
        out.raw("URL", &[], &clean_value(u))?;
    }
    // Graph stores a birthday as 11:59 UTC of the day so that no zone moves it to another
    // day: the date part is the birthday.
    if let Some(b) = str_at(c, &["birthday"]).and_then(|b| b.trim().get(..10))
        && chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_ok()
    {
        out.raw("BDAY", &[], b)?;
    }
    if let Some(n) = str_at(c, &["personalNotes"]) {
        out.text("NOTE", &[], n)?;
    }
    let categories: Vec<String> = strs(c, "categories").map(escape_text).collect();
    if !categories.is_empty() {
        out.raw("CATEGORIES", &[], &categories.join(","))?;
    }
    if let Some(id) = str_at(c, &["id"]) {
        out.text("UID", &[], &clean_value(id))?;
    }
    if let Some(m) = str_at(c, &["lastModifiedDateTime"]).and_then(parse_instant) {
        out.raw("REV", &[], &utc_stamp(m))?;
    }
    out.raw("END", &[], "VCARD")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card(c: Value) -> String {
        let mut out = Vec::new();
        let report = write_vcards([c], &mut out).unwrap();
        assert_eq!(report.written, 1);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formatted_name_falls_back_through_name_parts_email_and_company() {
        assert_eq!(
            formatted_name(&json!({"displayName": " Ann Lee "})),
            "Ann Lee"
        );
        assert_eq!(
            formatted_name(&json!({"givenName": "Ann", "surname": "Lee"})),
            "Ann Lee"
        );
        assert_eq!(
            formatted_name(
                &json!({"emailAddresses": [{"address": "a@x.example"}], "companyName": "X"})
            ),
            "a@x.example"
        );
        assert_eq!(
            formatted_name(&json!({"companyName": "Contoso"})),
            "Contoso"
        );
        assert_eq!(formatted_name(&json!({})), "Unnamed contact");
    }

    #[test]
    fn structured_values_escape_each_component() {
        let c = card(json!({
            "displayName": "x",
            "surname": "O'Hara; Jr",
            "givenName": "Mary, Ann",
            "companyName": "Contoso",
            "department": "",
            "homeAddress": {},
            "businessAddress": {"street": "1 Main St\nFloor 2", "city": "Redmond"},
        }));
        assert!(c.contains("\r\nN:O'Hara\\; Jr;Mary\\, Ann;;;\r\n"), "{c}");
        assert!(c.contains("\r\nORG:Contoso\r\n"), "{c}");
        assert!(
            c.contains("\r\nADR;TYPE=WORK:;;1 Main St\\nFloor 2;Redmond;;;\r\n"),
            "{c}"
        );
        assert!(
            !c.contains("TYPE=HOME"),
            "an empty address is left out: {c}"
        );
    }

    #[test]
    fn birthday_is_the_date_part_and_garbage_is_left_out() {
        assert!(
            card(json!({"birthday": "1975-03-12T11:59:00Z"})).contains("\r\nBDAY:1975-03-12\r\n")
        );
        assert!(!card(json!({"birthday": "soon"})).contains("BDAY"));
    }

    #[test]
    fn non_objects_are_skipped_and_reported() {
        let mut out = Vec::new();
        let r = write_vcards([json!("x"), json!({"id": "c1"}), json!(null)], &mut out).unwrap();
        assert_eq!(r.written, 1);
        assert_eq!(
            r.problems.iter().map(|p| p.index).collect::<Vec<_>>(),
            [0, 2]
        );
        assert!(r.problems.iter().all(|p| p.skipped));
        assert_eq!(
            String::from_utf8(out)
                .unwrap()
                .matches("BEGIN:VCARD")
                .count(),
            1
        );
    }
}
