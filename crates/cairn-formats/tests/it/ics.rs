use crate::{assert_content_lines, fixture, tenant, unescape};
use cairn_formats::ics::write_calendar;
use cairn_sim::content::{calendars, event_count, event_json};
use cairn_sim::keys::Res;
use ical::parser::ical::component::{IcalCalendar, IcalEvent};
use ical::property::Property;
use serde_json::Value;

fn parse(bytes: &[u8]) -> IcalCalendar {
    let mut cals: Vec<IcalCalendar> = ical::IcalParser::new(bytes)
        .collect::<Result<_, _>>()
        .expect("the ical crate parses the export");
    assert_eq!(cals.len(), 1, "one VCALENDAR");
    cals.remove(0)
}

fn prop<'a>(e: &'a IcalEvent, name: &str) -> Option<&'a Property> {
    e.properties.iter().find(|p| p.name == name)
}

fn value(e: &IcalEvent, name: &str) -> Option<String> {
    prop(e, name).and_then(|p| p.value.clone())
}

fn param(p: &Property, name: &str) -> Option<String> {
    p.params
        .as_ref()?
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.join(","))
}

fn sim_events() -> Vec<Value> {
    let t = tenant();
    let mut v = Vec::new();
    for u in 0..t.spec.users {
        let r = Res::User(u);
        for (cal, _) in calendars(&t, r) {
            for n in 0..event_count(&t, r, cal) {
                let mut e = event_json(&t, r, cal, n);
                e["id"] = format!("evt-{u}-{cal}-{n}").into();
                v.push(e);
            }
        }
    }
    v
}

#[test]
fn simulator_calendars_export_event_for_event() {
    let events = sim_events();
    assert!(events.len() > 100);
    let mut out = Vec::new();
    let report = write_calendar(events.clone(), &mut out).unwrap();
    assert_eq!(report.written, events.len());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_content_lines(&out);
    let cal = parse(&out);
    assert_eq!(cal.events.len(), events.len());
    let prodid = cal.properties.iter().find(|p| p.name == "PRODID").unwrap();
    assert_eq!(prodid.value.as_deref(), Some("-//Cairn//EN"));

    let mut seen_all_day = 0;
    let mut seen_rrule = 0;
    for (json, ev) in events.iter().zip(&cal.events) {
        assert_eq!(value(ev, "UID").as_deref(), json["iCalUId"].as_str());
        assert_eq!(
            value(ev, "SUMMARY").map(|s| unescape(&s)).as_deref(),
            json["subject"].as_str()
        );
        // Start: the same wall-clock time, in UTC or as a date for all-day events.
        let start = json["start"]["dateTime"].as_str().unwrap();
        let digits: String = start[..19].chars().filter(|c| c.is_ascii_digit()).collect();
        let dtstart = prop(ev, "DTSTART").unwrap();
        if json["isAllDay"] == true {
            seen_all_day += 1;
            assert_eq!(param(dtstart, "VALUE").as_deref(), Some("DATE"));
            assert_eq!(dtstart.value.as_deref(), Some(&digits[..8]));
        } else {
            let want = format!("{}T{}Z", &digits[..8], &digits[8..]);
            assert_eq!(dtstart.value.as_deref(), Some(want.as_str()));
        }
        // Attendees with a role and a participation status each.
        let attendees: Vec<&Property> = ev
            .properties
            .iter()
            .filter(|p| p.name == "ATTENDEE")
            .collect();
        assert_eq!(attendees.len(), json["attendees"].as_array().unwrap().len());
        for (a, ja) in attendees.iter().zip(json["attendees"].as_array().unwrap()) {
            let addr = ja["emailAddress"]["address"].as_str().unwrap();
            assert_eq!(a.value.as_deref(), Some(format!("mailto:{addr}").as_str()));
            assert_eq!(
                param(a, "CN").as_deref(),
                ja["emailAddress"]["name"].as_str()
            );
            let role = if ja["type"] == "optional" {
                "OPT-PARTICIPANT"
            } else {
                "REQ-PARTICIPANT"
            };
            assert_eq!(param(a, "ROLE").as_deref(), Some(role));
            assert!(param(a, "PARTSTAT").is_some());
        }
        let transp = if json["showAs"] == "free" {
            "TRANSPARENT"
        } else {
            "OPAQUE"
        };
        assert_eq!(value(ev, "TRANSP").as_deref(), Some(transp));
        // The HTML body's text, without tags.
        let desc = unescape(&value(ev, "DESCRIPTION").unwrap());
        assert!(!desc.contains('<'), "{desc}");
        assert!(desc.len() > 50);
        match json["recurrence"]["pattern"]["type"].as_str() {
            None => assert!(value(ev, "RRULE").is_none()),
            Some(kind) => {
                seen_rrule += 1;
                let rrule = value(ev, "RRULE").unwrap();
                let freq = match kind {
                    "daily" => "FREQ=DAILY",
                    "weekly" => "FREQ=WEEKLY",
                    _ => "FREQ=MONTHLY",
                };
                assert!(rrule.starts_with(freq), "{kind}: {rrule}");
                match json["recurrence"]["range"]["type"].as_str() {
                    Some("numbered") => assert!(rrule.contains("COUNT=10"), "{rrule}"),
                    Some("endDate") => assert!(rrule.contains(";UNTIL="), "{rrule}"),
                    _ => assert!(!rrule.contains("UNTIL") && !rrule.contains("COUNT")),
                }
            }
        }
    }
    assert!(seen_all_day > 0 && seen_rrule > 0, "the sample covers both");
}

#[test]
fn fixture_events_map_every_recurrence_pattern_zone_and_field() {
    let events = fixture("events.json");
    let mut out = Vec::new();
    let report = write_calendar(events, &mut out).unwrap();
    assert_content_lines(&out);

    // Two items are not events; one event keeps everything but its broken recurrence.
    assert_eq!(report.written, 7);
    let skipped: Vec<_> = report.problems.iter().filter(|p| p.skipped).collect();
    assert_eq!(skipped.len(), 2, "{:?}", report.problems);
    assert_eq!(skipped[0].id.as_deref(), Some("AAMkAGI2-no-start"));
    assert!(skipped[0].reason.contains("start"));
    assert_eq!(skipped[1].index, 8);
    let degraded: Vec<_> = report.problems.iter().filter(|p| !p.skipped).collect();
    assert_eq!(degraded.len(), 1);
    assert_eq!(degraded[0].id.as_deref(), Some("AAMkAGI2-bad-recurrence"));
    assert!(
        degraded[0].reason.contains("daysOfWeek"),
        "{}",
        degraded[0].reason
    );

    let cal = parse(&out);
    let by_uid = |uid: &str| {
        cal.events
            .iter()
            .find(|e| value(e, "UID").as_deref() == Some(uid))
            .unwrap_or_else(|| panic!("no event {uid}"))
    };

    // relativeMonthly, Windows zone → IANA, UNTIL at the end of the day in Berlin.
    let e = by_uid("040000008200E00074C5B7101A82E00800000000A1");
    assert_eq!(
        value(e, "RRULE").as_deref(),
        Some("FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1;UNTIL=20261231T225959Z")
    );
    let dtstart = prop(e, "DTSTART").unwrap();
    assert_eq!(param(dtstart, "TZID").as_deref(), Some("Europe/Berlin"));
    assert_eq!(dtstart.value.as_deref(), Some("20260130T150000"));
    assert_eq!(
        unescape(&value(e, "SUMMARY").unwrap()),
        "Monthly review; budget, forecast \\ risks"
    );
    assert_eq!(
        unescape(&value(e, "DESCRIPTION").unwrap()),
        "Agenda:\n1. Numbers\n2. Risks, issues; actions"
    );
    assert_eq!(
        unescape(&value(e, "LOCATION").unwrap()),
        "Salle Réunion 4.12, Bâtiment B"
    );
    let organizer = prop(e, "ORGANIZER").unwrap();
    assert_eq!(param(organizer, "CN").as_deref(), Some("O'Hara, Margaret"));
    assert_eq!(organizer.value.as_deref(), Some("mailto:mohara@example.ie"));
    let attendees: Vec<(String, String, String)> = e
        .properties
        .iter()
        .filter(|p| p.name == "ATTENDEE")
        .map(|p| {
            (
                param(p, "CN").unwrap(),
                param(p, "ROLE").unwrap(),
                param(p, "PARTSTAT").unwrap(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        attendees,
        [
            s("Jürgen Weiß", "REQ-PARTICIPANT", "ACCEPTED"),
            s("佐藤 花子", "OPT-PARTICIPANT", "TENTATIVE"),
            s("Room 4.12", "NON-PARTICIPANT", "NEEDS-ACTION"),
        ],
        "an attendee without an address is left out"
    );
    // Two categories, the comma inside the first escaped.
    assert_eq!(
        value(e, "CATEGORIES").as_deref(),
        Some("Finance\\, EMEA,Red category")
    );
    assert_eq!(value(e, "CLASS").as_deref(), Some("CONFIDENTIAL"));
    assert_eq!(value(e, "PRIORITY").as_deref(), Some("1"));
    assert_eq!(value(e, "CREATED").as_deref(), Some("20251201T083000Z"));
    assert_eq!(
        value(e, "LAST-MODIFIED").as_deref(),
        Some("20260102T094510Z")
    );
    assert_eq!(value(e, "DTSTAMP").as_deref(), Some("20260102T094510Z"));
    assert_eq!(e.alarms.len(), 1);
    let trigger = e.alarms[0].properties.iter().find(|p| p.name == "TRIGGER");
    assert_eq!(trigger.and_then(|p| p.value.as_deref()), Some("-PT30M"));

    // absoluteYearly, all day, HTML body stripped with the HTML kept aside.
    let e = by_uid("040000008200E00074C5B7101A82E00800000000A2");
    assert_eq!(
        value(e, "RRULE").as_deref(),
        Some("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=11")
    );
    assert_eq!(value(e, "DTSTART").as_deref(), Some("20260411"));
    assert_eq!(value(e, "DTEND").as_deref(), Some("20260412"));
    assert_eq!(
        unescape(&value(e, "DESCRIPTION").unwrap()),
        "Ne pas oublier le g&acirc;teau & les bougies.\nBudget : 30 €\nLieu : Café Central"
    );
    let alt = prop(e, "X-ALT-DESC").unwrap();
    assert_eq!(param(alt, "FMTTYPE").as_deref(), Some("text/html"));
    assert!(unescape(alt.value.as_deref().unwrap()).starts_with("<html><head><style>"));
    assert_eq!(value(e, "TRANSP").as_deref(), Some("TRANSPARENT"));
    assert_eq!(value(e, "CLASS").as_deref(), Some("PRIVATE"));
    assert_eq!(
        unescape(&value(e, "SUMMARY").unwrap()),
        "Anniversaire de Zoé 🎂"
    );
    assert!(e.alarms.is_empty());

    // relativeYearly, numbered; an empty body gives no DESCRIPTION.
    let e = by_uid("040000008200E00074C5B7101A82E00800000000A3");
    assert_eq!(
        value(e, "RRULE").as_deref(),
        Some("FREQ=YEARLY;BYMONTH=11;BYDAY=TH;BYSETPOS=4;COUNT=5")
    );
    assert_eq!(value(e, "DTSTART").as_deref(), Some("20261126"));
    assert_eq!(
        value(e, "X-MICROSOFT-CDO-BUSYSTATUS").as_deref(),
        Some("OOF")
    );
    assert!(value(e, "DESCRIPTION").is_none());

    // weekly every other week on three days, Tokyo; a long line folded and unfolded intact.
    let e = by_uid("040000008200E00074C5B7101A82E00800000000A4");
    assert_eq!(
        value(e, "RRULE").as_deref(),
        Some("FREQ=WEEKLY;BYDAY=MO,WE,FR;INTERVAL=2;WKST=MO;UNTIL=20260331T145959Z")
    );
    assert_eq!(
        param(prop(e, "DTEND").unwrap(), "TZID").as_deref(),
        Some("Asia/Tokyo")
    );
    let desc = unescape(&value(e, "DESCRIPTION").unwrap());
    assert!(desc.ends_with("会議の議事録 Отчёт за квартал ✈️🎉 and so on until the end."));
    assert!(desc.len() > 200);

    // Unknown zone kept as given; id as UID without iCalUId; cancelled; absoluteMonthly.
    let e = by_uid("AAMkAGI2-custom-zone");
    let dtstart = prop(e, "DTSTART").unwrap();
    assert_eq!(
        param(dtstart, "TZID").as_deref(),
        Some("Customized Time Zone")
    );
    assert_eq!(dtstart.value.as_deref(), Some("20260505T140000"));
    assert_eq!(value(e, "STATUS").as_deref(), Some("CANCELLED"));
    assert_eq!(
        value(e, "RRULE").as_deref(),
        Some("FREQ=MONTHLY;BYMONTHDAY=5;INTERVAL=2;COUNT=3")
    );

    // daily, IANA zone as given.
    let e = by_uid("040000008200E00074C5B7101A82E00800000000A6");
    assert_eq!(value(e, "RRULE").as_deref(), Some("FREQ=DAILY;COUNT=7"));
    assert_eq!(
        param(prop(e, "DTSTART").unwrap(), "TZID").as_deref(),
        Some("Europe/Berlin")
    );

    // The broken recurrence: the event is there, as a single event.
    let e = by_uid("040000008200E00074C5B7101A82E00800000000A7");
    assert!(value(e, "RRULE").is_none());
    assert_eq!(value(e, "DTSTART").as_deref(), Some("20260701T100000Z"));
}

#[test]
fn an_empty_calendar_is_still_a_calendar() {
    let mut out = Vec::new();
    let report = write_calendar(std::iter::empty(), &mut out).unwrap();
    assert_eq!(report.written, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Cairn//EN\r\nCALSCALE:GREGORIAN\r\nEND:VCALENDAR\r\n"
    );
}
