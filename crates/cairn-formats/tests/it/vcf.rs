use crate::{assert_content_lines, fixture, tenant, unescape};
use cairn_formats::vcf::write_vcards;
use cairn_sim::content::{contact_count, contact_folders, contact_json};
use cairn_sim::keys::Res;
use ical::parser::vcard::component::VcardContact;
use ical::property::Property;
use serde_json::Value;

fn parse(bytes: &[u8]) -> Vec<VcardContact> {
    ical::VcardParser::new(bytes)
        .collect::<Result<_, _>>()
        .expect("the ical crate parses the export")
}

fn props<'a>(c: &'a VcardContact, name: &'a str) -> impl Iterator<Item = &'a Property> {
    c.properties.iter().filter(move |p| p.name == name)
}

fn value(c: &VcardContact, name: &str) -> Option<String> {
    props(c, name).next().and_then(|p| p.value.clone())
}

/// The TYPE values as the parser lists them, joined by `|`: `TYPE=WORK,VOICE` is two
/// values (`WORK|VOICE`), a quoted `TYPE="WORK,VOICE"` would be one.
fn types(p: &Property) -> String {
    p.params
        .iter()
        .flatten()
        .filter(|(k, _)| k == "TYPE")
        .flat_map(|(_, v)| v.clone())
        .collect::<Vec<_>>()
        .join("|")
}

/// Splits a structured value on unescaped `;` and unescapes each component.
fn components(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in v.chars() {
        match (escaped, c) {
            (false, '\\') => {
                escaped = true;
                out.last_mut().unwrap().push(c);
            }
            (false, ';') => out.push(String::new()),
            _ => {
                escaped = false;
                out.last_mut().unwrap().push(c);
            }
        }
    }
    out.iter().map(|s| unescape(s)).collect()
}

fn sim_contacts() -> Vec<Value> {
    let t = tenant();
    let mut v = Vec::new();
    for u in 0..t.spec.users {
        let r = Res::User(u);
        for (folder, _, _) in contact_folders(&t, r) {
            for n in 0..contact_count(&t, r, folder) {
                let mut c = contact_json(&t, r, folder, n);
                c["id"] = format!("contact-{u}-{folder}-{n}").into();
                v.push(c);
            }
        }
    }
    v
}

#[test]
fn simulator_contacts_export_card_for_card() {
    let contacts = sim_contacts();
    assert!(contacts.len() >= 90);
    let mut out = Vec::new();
    let report = write_vcards(contacts.clone(), &mut out).unwrap();
    assert_eq!(report.written, contacts.len());
    assert!(report.problems.is_empty());
    assert_content_lines(&out);
    let cards = parse(&out);
    assert_eq!(cards.len(), contacts.len());
    let mut birthdays = 0;
    for (json, card) in contacts.iter().zip(&cards) {
        assert_eq!(value(card, "VERSION").as_deref(), Some("3.0"));
        assert_eq!(value(card, "UID"), json["id"].as_str().map(str::to_string));
        assert_eq!(
            value(card, "FN").map(|v| unescape(&v)).as_deref(),
            json["displayName"].as_str()
        );
        let n = components(&value(card, "N").unwrap());
        assert_eq!(n.len(), 5);
        assert_eq!(n[0], json["surname"].as_str().unwrap());
        assert_eq!(n[1], json["givenName"].as_str().unwrap());
        let email = props(card, "EMAIL").next().unwrap();
        assert_eq!(
            email.value.as_deref(),
            json["emailAddresses"][0]["address"].as_str()
        );
        let tels: Vec<(String, String)> = props(card, "TEL")
            .map(|p| (types(p), p.value.clone().unwrap()))
            .collect();
        let mut want = vec![(
            "WORK|VOICE".to_string(),
            json["businessPhones"][0].as_str().unwrap().to_string(),
        )];
        if let Some(m) = json["mobilePhone"].as_str() {
            want.push(("CELL|VOICE".to_string(), m.to_string()));
        }
        assert_eq!(tels, want);
        let org = components(&value(card, "ORG").unwrap());
        assert_eq!(org, [json["companyName"].as_str().unwrap()]);
        assert_eq!(value(card, "TITLE").as_deref(), json["jobTitle"].as_str());
        let adr = props(card, "ADR").next().unwrap();
        assert_eq!(types(adr), "WORK");
        let adr = components(adr.value.as_deref().unwrap());
        assert_eq!(adr[2], json["businessAddress"]["street"].as_str().unwrap());
        assert_eq!(adr[3], json["businessAddress"]["city"].as_str().unwrap());
        assert_eq!(
            adr[5],
            json["businessAddress"]["postalCode"].as_str().unwrap()
        );
        match json["birthday"].as_str() {
            Some(b) => {
                birthdays += 1;
                assert_eq!(value(card, "BDAY").as_deref(), Some(&b[..10]));
            }
            None => assert!(value(card, "BDAY").is_none()),
        }
        // The parser trims the end of every line, so a trailing space is not seen; compare
        // without trailing whitespace (a trailing line break survives as `\n`).
        let notes = json["personalNotes"].as_str().unwrap().trim_end();
        let note = value(card, "NOTE")
            .map(|v| unescape(&v))
            .unwrap_or_default();
        assert_eq!(note.trim_end(), notes);
    }
    assert!(birthdays > 0, "the sample has birthdays");
}

#[test]
fn fixture_contacts_keep_every_field() {
    let mut out = Vec::new();
    let report = write_vcards(fixture("contacts.json"), &mut out).unwrap();
    assert_eq!(report.written, 3);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].index, 3);
    assert_content_lines(&out);
    let cards = parse(&out);
    assert_eq!(cards.len(), 3);

    let c = &cards[0];
    assert_eq!(unescape(&value(c, "FN").unwrap()), "Dr. Margaret O'Hara");
    assert_eq!(
        components(&value(c, "N").unwrap()),
        ["O'Hara", "Margaret", "Anne", "Dr.", "Jr."]
    );
    assert_eq!(value(c, "NICKNAME").as_deref(), Some("Maggie"));
    let emails: Vec<(String, String)> = props(c, "EMAIL")
        .map(|p| (types(p), p.value.clone().unwrap()))
        .collect();
    assert_eq!(
        emails,
        [
            ("INTERNET|PREF".into(), "mohara@example.ie".into()),
            ("INTERNET".into(), "maggie@home.example".into())
        ]
    );
    let tels: Vec<String> = props(c, "TEL").map(types).collect();
    assert_eq!(
        tels,
        ["WORK|VOICE", "WORK|VOICE", "HOME|VOICE", "CELL|VOICE"]
    );
    let adrs: Vec<(String, Vec<String>)> = props(c, "ADR")
        .map(|p| (types(p), components(p.value.as_deref().unwrap())))
        .collect();
    assert_eq!(adrs.len(), 2, "the empty other address is left out");
    assert_eq!(adrs[0].0, "WORK");
    assert_eq!(
        adrs[0].1,
        [
            "",
            "",
            "1 Grand Canal Sq\nFloor 4",
            "Dublin",
            "",
            "D02 P820",
            "Ireland"
        ]
    );
    assert_eq!(adrs[1].0, "HOME");
    assert_eq!(adrs[1].1[3], "Lyon");
    assert_eq!(
        components(&value(c, "ORG").unwrap()),
        ["Fabrikam; Ireland", "Finance, EMEA"]
    );
    assert_eq!(value(c, "TITLE").as_deref(), Some("CFO"));
    assert_eq!(
        value(c, "URL").as_deref(),
        Some("https://fabrikam.example/finance")
    );
    assert_eq!(value(c, "BDAY").as_deref(), Some("1971-03-12"));
    let note = unescape(&value(c, "NOTE").unwrap());
    assert!(note.starts_with(
        "Met at the Zürich offsite.\nPrefers calls; never e-mail after 18:00, please."
    ));
    assert!(note.ends_with("consectetur adipiscing elit."));
    assert_eq!(
        value(c, "CATEGORIES").as_deref(),
        Some("VIP,Finance\\, EMEA")
    );
    assert_eq!(value(c, "REV").as_deref(), Some("20260901T100000Z"));

    let c = &cards[1];
    assert_eq!(unescape(&value(c, "FN").unwrap()), "佐藤 花子");
    assert_eq!(components(&value(c, "N").unwrap())[..2], ["佐藤", "花子"]);
    assert!(value(c, "NOTE").is_none() && value(c, "TEL").is_none());

    let c = &cards[2];
    assert_eq!(value(c, "FN").as_deref(), Some("Northwind Traders"));
    assert_eq!(value(c, "ORG").as_deref(), Some("Northwind Traders"));
}
