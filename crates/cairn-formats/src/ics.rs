//! Calendars as iCalendar (RFC 5545): what Thunderbird, Apple Calendar, Google Calendar and
//! Outlook itself import, from the Graph event JSON a backup holds.
//!
//! Time zones. Graph gives `start`/`end` as a wall-clock `dateTime` plus a `timeZone`, which
//! is `UTC` unless the backup asked for another zone, and then often a Windows zone name
//! ("W. Europe Standard Time"). `UTC` becomes the `Z` form. Windows names of the common zones
//! become their IANA names (the mapping follows CLDR's windowsZones territory "001"), IANA
//! names are kept; both are written as `TZID=` **without a VTIMEZONE component**. RFC 5545
//! asks for one, but every mainstream client resolves IANA TZIDs from its own database, and a
//! VTIMEZONE we invent would be less accurate than theirs. A zone name we do not know is
//! written as given, converted to nothing: the wall-clock time stays right and the client
//! decides what the zone means.
//!
//! Recurrence. The series master carries the RRULE. Occurrences and exceptions that Graph
//! returns as events of their own are written as standalone events (Graph gives them their
//! own iCalUId, so they cannot be tied to the master with RECURRENCE-ID).

use crate::text::{
    ContentWriter, clean_value, html_to_text, parse_instant, parse_local, str_at, strs, utc_stamp,
};
use crate::{ExportReport, FormatError};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::io::{self, Write};

const FORMAT: &str = "iCalendar";

/// Writes one VCALENDAR with a VEVENT per Graph event, streaming: events are read from the
/// iterator and written one at a time.
///
/// An event without an id or a usable start is skipped; a recurrence that cannot be
/// expressed is left out of its event. Both are listed in the report.
pub fn write_calendar<W: Write>(
    events: impl IntoIterator<Item = Value>,
    w: W,
) -> Result<ExportReport, FormatError> {
    let mut out = ContentWriter::new(io::BufWriter::new(w));
    let mut report = ExportReport::default();
    let err = FormatError::write;
    out.raw("BEGIN", &[], "VCALENDAR").map_err(err(FORMAT))?;
    out.raw("VERSION", &[], "2.0").map_err(err(FORMAT))?;
    out.raw("PRODID", &[], "-//Cairn//EN")
        .map_err(err(FORMAT))?;
    out.raw("CALSCALE", &[], "GREGORIAN").map_err(err(FORMAT))?;
    let mut buf = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        buf.clear();
        let mut notes = Vec::new();
        let mut vevent = ContentWriter::new(&mut buf);
        match write_event(&event, &mut vevent, &mut notes) {
            Ok(()) => {
                out.get_mut().write_all(&buf).map_err(err(FORMAT))?;
                report.written += 1;
                for n in notes {
                    report.degrade(index, &event, n);
                }
            }
            Err(Skip::Reason(reason)) => report.skip(index, &event, reason),
            Err(Skip::Io(e)) => return Err(err(FORMAT)(e)),
        }
    }
    out.raw("END", &[], "VCALENDAR").map_err(err(FORMAT))?;
    out.into_inner()
        .into_inner()
        .map_err(|e| err(FORMAT)(e.into_error()))?
        .flush()
        .map_err(err(FORMAT))?;
    Ok(report)
}

enum Skip {
    Reason(String),
    Io(io::Error),
}

impl From<io::Error> for Skip {
    fn from(e: io::Error) -> Self {
        Skip::Io(e)
    }
}

/// A point in time as iCalendar can say it.
#[derive(Clone, Debug, PartialEq)]
enum When {
    Date(NaiveDate),
    Utc(NaiveDateTime),
    /// Wall-clock time in a named zone; `tz` when the name is one we know.
    Zoned {
        local: NaiveDateTime,
        tzid: String,
        tz: Option<Tz>,
    },
}

impl When {
    fn of(v: &Value, all_day: bool) -> Option<When> {
        let local = parse_local(v.get("dateTime")?.as_str()?)?;
        if all_day {
            return Some(When::Date(local.date()));
        }
        let zone = v.get("timeZone").and_then(Value::as_str).unwrap_or("UTC");
        Some(match Zone::of(zone) {
            Zone::Utc => When::Utc(local),
            Zone::Known(iana, tz) => When::Zoned {
                local,
                tzid: iana,
                tz: Some(tz),
            },
            Zone::Unknown(name) => When::Zoned {
                local,
                tzid: name,
                tz: None,
            },
        })
    }

    fn write(&self, out: &mut ContentWriter<impl Write>, name: &str) -> io::Result<()> {
        match self {
            When::Date(d) => out.raw(name, &[("VALUE", "DATE")], &d.format("%Y%m%d").to_string()),
            When::Utc(t) => out.raw(name, &[], &utc_stamp(t.and_utc())),
            When::Zoned { local, tzid, .. } => out.raw(
                name,
                &[("TZID", tzid)],
                &local.format("%Y%m%dT%H%M%S").to_string(),
            ),
        }
    }

    fn tz(&self) -> Option<Tz> {
        match self {
            When::Date(_) => None,
            When::Utc(_) => Some(Tz::UTC),
            When::Zoned { tz, .. } => *tz,
        }
    }
}

/// A Graph `dateTimeTimeZone` (`{"dateTime","timeZone"}`) as an instant: wall-clock time
/// in a zone Cairn knows converted to UTC, in one it does not taken as UTC.
pub fn utc_of(v: &Value) -> Option<chrono::DateTime<Utc>> {
    Some(match When::of(v, false)? {
        When::Date(d) => d.and_hms_opt(0, 0, 0)?.and_utc(),
        When::Utc(t) => t.and_utc(),
        When::Zoned { local, tz, .. } => match tz {
            Some(tz) => tz
                .from_local_datetime(&local)
                .earliest()?
                .with_timezone(&Utc),
            None => local.and_utc(),
        },
    })
}

/// What a Graph `timeZone` string names.
enum Zone {
    Utc,
    Known(String, Tz),
    Unknown(String),
}

impl Zone {
    fn of(name: &str) -> Zone {
        let name = name.trim();
        let utc = [
            "",
            "UTC",
            "Etc/UTC",
            "GMT",
            "Etc/GMT",
            "Z",
            "Coordinated Universal Time",
            "tzone://Microsoft/Utc",
        ];
        if utc.iter().any(|u| u.eq_ignore_ascii_case(name)) {
            return Zone::Utc;
        }
        let iana = windows_to_iana(name).unwrap_or(name);
        match iana.parse::<Tz>() {
            Ok(tz) => Zone::Known(iana.to_string(), tz),
            Err(_) => Zone::Unknown(name.to_string()),
        }
    }
}

/// The IANA name of a Windows time zone name, for the common zones (CLDR windowsZones,
/// territory "001"). `None` for names not in the table, IANA names included.
pub fn windows_to_iana(windows: &str) -> Option<&'static str> {
    WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(windows.trim()))
        .map(|(_, iana)| *iana)
}

/// Windows zone name → IANA name, CLDR windowsZones territory "001".
pub(crate) const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("UTC-11", "Etc/GMT+11"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Mountain Standard Time", "America/Denver"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Eastern Standard Time (Mexico)", "America/Cancun"),
    ("Eastern Standard Time", "America/New_York"),
    ("US Eastern Standard Time", "America/Indiana/Indianapolis"),
    ("Cuba Standard Time", "America/Havana"),
    ("Venezuela Standard Time", "America/Caracas"),
    ("Paraguay Standard Time", "America/Asuncion"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("SA Western Standard Time", "America/La_Paz"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
    ("Greenland Standard Time", "America/Nuuk"),
    ("Montevideo Standard Time", "America/Montevideo"),
    ("UTC-02", "Etc/GMT+2"),
    ("Azores Standard Time", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "Atlantic/Cape_Verde"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("Jordan Standard Time", "Asia/Amman"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Middle East Standard Time", "Asia/Beirut"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Syria Standard Time", "Asia/Damascus"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("FLE Standard Time", "Europe/Kyiv"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("Kaliningrad Standard Time", "Europe/Kaliningrad"),
    ("Namibia Standard Time", "Africa/Windhoek"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Belarus Standard Time", "Europe/Minsk"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("E. Africa Standard Time", "Africa/Nairobi"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Azerbaijan Standard Time", "Asia/Baku"),
    ("Mauritius Standard Time", "Indian/Mauritius"),
    ("Georgian Standard Time", "Asia/Tbilisi"),
    ("Caucasus Standard Time", "Asia/Yerevan"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("West Asia Standard Time", "Asia/Tashkent"),
    ("Ekaterinburg Standard Time", "Asia/Yekaterinburg"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Kolkata"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Kathmandu"),
    ("Central Asia Standard Time", "Asia/Almaty"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("Myanmar Standard Time", "Asia/Yangon"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("N. Central Asia Standard Time", "Asia/Novosibirsk"),
    ("North Asia Standard Time", "Asia/Krasnoyarsk"),
    ("China Standard Time", "Asia/Shanghai"),
    ("North Asia East Standard Time", "Asia/Irkutsk"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Yakutsk Standard Time", "Asia/Yakutsk"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("West Pacific Standard Time", "Pacific/Port_Moresby"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("Vladivostok Standard Time", "Asia/Vladivostok"),
    ("Central Pacific Standard Time", "Pacific/Guadalcanal"),
    ("UTC+12", "Etc/GMT-12"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("Fiji Standard Time", "Pacific/Fiji"),
    ("Tonga Standard Time", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "Pacific/Apia"),
    ("Line Islands Standard Time", "Pacific/Kiritimati"),
];

fn write_event(
    ev: &Value,
    out: &mut ContentWriter<impl Write>,
    notes: &mut Vec<String>,
) -> Result<(), Skip> {
    if !ev.is_object() {
        return Err(Skip::Reason(format!("not a JSON object: {}", kind_of(ev))));
    }
    let uid = str_at(ev, &["iCalUId"])
        .or_else(|| str_at(ev, &["id"]))
        .ok_or_else(|| Skip::Reason("the event has neither iCalUId nor id".into()))?;
    let all_day = ev.get("isAllDay").and_then(Value::as_bool).unwrap_or(false);
    let start = ev
        .get("start")
        .and_then(|s| When::of(s, all_day))
        .ok_or_else(|| Skip::Reason("the event has no readable start".into()))?;
    let end = ev.get("end").and_then(|e| When::of(e, all_day));
    let created = str_at(ev, &["createdDateTime"]).and_then(parse_instant);
    let modified = str_at(ev, &["lastModifiedDateTime"]).and_then(parse_instant);

    out.raw("BEGIN", &[], "VEVENT")?;
    out.text("UID", &[], &clean_value(uid))?;
    // Without a METHOD, DTSTAMP is the time of the last revision (RFC 5545 3.8.7.2).
    let stamp = modified.or(created).unwrap_or_else(Utc::now);
    out.raw("DTSTAMP", &[], &utc_stamp(stamp))?;
    start.write(out, "DTSTART")?;
    if let Some(end) = &end {
        end.write(out, "DTEND")?;
    }
    if let Some(rec) = ev.get("recurrence").filter(|r| r.is_object()) {
        match rrule(rec, &start) {
            Ok(rule) => out.raw("RRULE", &[], &rule)?,
            Err(why) => notes.push(format!("recurrence left out: {why}")),
        }
    }
    if let Some(s) = str_at(ev, &["subject"]) {
        out.text("SUMMARY", &[], s)?;
    }
    write_body(ev, out)?;
    if let Some(l) = str_at(ev, &["location", "displayName"]) {
        out.text("LOCATION", &[], l)?;
    }
    if let Some(addr) = str_at(ev, &["organizer", "emailAddress", "address"]) {
        let name = str_at(ev, &["organizer", "emailAddress", "name"]);
        let mut params = Vec::new();
        if let Some(n) = name {
            params.push(("CN", n));
        }
        out.raw("ORGANIZER", &params, &mailto(addr))?;
    }
    for a in ev
        .get("attendees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        write_attendee(a, out)?;
    }
    let categories: Vec<String> = strs(ev, "categories")
        .map(crate::text::escape_text)
        .collect();
    if !categories.is_empty() {
        out.raw("CATEGORIES", &[], &categories.join(","))?;
    }
    let class = match str_at(ev, &["sensitivity"]) {
        Some("personal") | Some("private") => Some("PRIVATE"),
        Some("confidential") => Some("CONFIDENTIAL"),
        Some("normal") => Some("PUBLIC"),
        _ => None,
    };
    if let Some(c) = class {
        out.raw("CLASS", &[], c)?;
    }
    match str_at(ev, &["importance"]) {
        Some("high") => out.raw("PRIORITY", &[], "1")?,
        Some("low") => out.raw("PRIORITY", &[], "9")?,
        _ => {}
    }
    if let Some(show) = str_at(ev, &["showAs"]) {
        let transp = if show == "free" {
            "TRANSPARENT"
        } else {
            "OPAQUE"
        };
        out.raw("TRANSP", &[], transp)?;
        // Outlook's own exports carry the finer busy status (tentative, out of office).
        let busy = match show {
            "free" => Some("FREE"),
            "tentative" => Some("TENTATIVE"),
            "busy" => Some("BUSY"),
            "oof" => Some("OOF"),
            "workingElsewhere" => Some("WORKINGELSEWHERE"),
            _ => None,
        };
        if let Some(b) = busy {
            out.raw("X-MICROSOFT-CDO-BUSYSTATUS", &[], b)?;
        }
    }
    if ev.get("isCancelled").and_then(Value::as_bool) == Some(true) {
        out.raw("STATUS", &[], "CANCELLED")?;
    }
    if let Some(c) = created {
        out.raw("CREATED", &[], &utc_stamp(c))?;
    }
    if let Some(m) = modified {
        out.raw("LAST-MODIFIED", &[], &utc_stamp(m))?;
    }
    if ev.get("isReminderOn").and_then(Value::as_bool) == Some(true) {
        let minutes = ev
            .get("reminderMinutesBeforeStart")
            .and_then(Value::as_i64)
            .unwrap_or(15)
            .max(0);
        out.raw("BEGIN", &[], "VALARM")?;
        out.raw("ACTION", &[], "DISPLAY")?;
        out.raw("TRIGGER", &[], &format!("-PT{minutes}M"))?;
        out.text("DESCRIPTION", &[], "Reminder")?;
        out.raw("END", &[], "VALARM")?;
    }
    out.raw("END", &[], "VEVENT")?;
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn mailto(addr: &str) -> String {
    format!("mailto:{}", clean_value(addr))
}

/// DESCRIPTION holds plain text; an HTML body is also given whole in X-ALT-DESC, which
/// Outlook and Thunderbird show instead when they can.
fn write_body(ev: &Value, out: &mut ContentWriter<impl Write>) -> io::Result<()> {
    let content = str_at(ev, &["body", "content"]);
    let html = str_at(ev, &["body", "contentType"]).is_some_and(|t| t.eq_ignore_ascii_case("html"));
    match content {
        Some(c) if html => {
            let text = html_to_text(c);
            if !text.is_empty() {
                out.text("DESCRIPTION", &[], &text)?;
            }
            out.text("X-ALT-DESC", &[("FMTTYPE", "text/html")], c)
        }
        Some(c) => out.text("DESCRIPTION", &[], c),
        None => match str_at(ev, &["bodyPreview"]) {
            Some(p) => out.text("DESCRIPTION", &[], p),
            None => Ok(()),
        },
    }
}

fn write_attendee(a: &Value, out: &mut ContentWriter<impl Write>) -> io::Result<()> {
    let Some(addr) = str_at(a, &["emailAddress", "address"]) else {
        return Ok(());
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(n) = str_at(a, &["emailAddress", "name"]) {
        params.push(("CN", n));
    }
    match str_at(a, &["type"]) {
        Some("optional") => params.push(("ROLE", "OPT-PARTICIPANT")),
        // Rooms and equipment, as Outlook writes them.
        Some("resource") => {
            params.push(("CUTYPE", "RESOURCE"));
            params.push(("ROLE", "NON-PARTICIPANT"));
        }
        _ => params.push(("ROLE", "REQ-PARTICIPANT")),
    }
    let partstat = match str_at(a, &["status", "response"]) {
        Some("accepted") | Some("organizer") => "ACCEPTED",
        Some("tentativelyAccepted") => "TENTATIVE",
        Some("declined") => "DECLINED",
        _ => "NEEDS-ACTION",
    };
    params.push(("PARTSTAT", partstat));
    out.raw("ATTENDEE", &params, &mailto(addr))
}

/// The RRULE value of a Graph `patternedRecurrence`, or why there is none.
fn rrule(rec: &Value, start: &When) -> Result<String, String> {
    let pattern = rec.get("pattern").ok_or("no pattern")?;
    let kind = str_at(pattern, &["type"]).ok_or("the pattern has no type")?;
    let interval = pattern
        .get("interval")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1);
    let days = || -> Result<String, String> {
        let days: Vec<&str> = strs(pattern, "daysOfWeek")
            .map(|d| weekday(d).ok_or_else(|| format!("unknown day of week {d:?}")))
            .collect::<Result<_, _>>()?;
        if days.is_empty() {
            return Err(format!("a {kind} pattern without daysOfWeek"));
        }
        Ok(days.join(","))
    };
    let month_day = || match pattern.get("dayOfMonth").and_then(Value::as_u64) {
        Some(d @ 1..=31) => Ok(d),
        _ => Err(format!("a {kind} pattern without a dayOfMonth")),
    };
    let month = || match pattern.get("month").and_then(Value::as_u64) {
        Some(m @ 1..=12) => Ok(m),
        _ => Err(format!("a {kind} pattern without a month")),
    };
    let setpos = || match str_at(pattern, &["index"]).unwrap_or("first") {
        "first" => Ok(1),
        "second" => Ok(2),
        "third" => Ok(3),
        "fourth" => Ok(4),
        "last" => Ok(-1),
        other => Err(format!("unknown week index {other:?}")),
    };
    let mut parts = match kind {
        "daily" => vec!["FREQ=DAILY".to_string()],
        "weekly" => {
            let mut p = vec!["FREQ=WEEKLY".to_string()];
            // Graph allows a weekly pattern without days: it repeats on the start's day.
            if let Ok(d) = days() {
                p.push(format!("BYDAY={d}"));
            }
            p
        }
        "absoluteMonthly" => vec![
            "FREQ=MONTHLY".into(),
            format!("BYMONTHDAY={}", month_day()?),
        ],
        "relativeMonthly" => vec![
            "FREQ=MONTHLY".into(),
            format!("BYDAY={}", days()?),
            format!("BYSETPOS={}", setpos()?),
        ],
        "absoluteYearly" => vec![
            "FREQ=YEARLY".into(),
            format!("BYMONTH={}", month()?),
            format!("BYMONTHDAY={}", month_day()?),
        ],
        "relativeYearly" => vec![
            "FREQ=YEARLY".into(),
            format!("BYMONTH={}", month()?),
            format!("BYDAY={}", days()?),
            format!("BYSETPOS={}", setpos()?),
        ],
        other => return Err(format!("unknown pattern type {other:?}")),
    };
    if interval > 1 {
        parts.push(format!("INTERVAL={interval}"));
    }
    if kind == "weekly"
        && let Some(wkst) = str_at(pattern, &["firstDayOfWeek"]).and_then(weekday)
    {
        parts.push(format!("WKST={wkst}"));
    }
    let range = rec.get("range").unwrap_or(&Value::Null);
    match str_at(range, &["type"]) {
        Some("endDate") => {
            let end = str_at(range, &["endDate"])
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or("an endDate range without a readable endDate")?;
            let zone = str_at(range, &["recurrenceTimeZone"]).map(Zone::of);
            parts.push(format!("UNTIL={}", until(end, start, zone)));
        }
        Some("numbered") => match range.get("numberOfOccurrences").and_then(Value::as_u64) {
            Some(n) if n > 0 => parts.push(format!("COUNT={n}")),
            _ => return Err("a numbered range without numberOfOccurrences".into()),
        },
        _ => {}
    }
    Ok(parts.join(";"))
}

/// UNTIL for Graph's inclusive `endDate`: the last second of that day in the recurrence's
/// zone, in UTC; a DATE when the event is all-day (RFC 5545 wants UNTIL of DTSTART's type).
/// When neither the recurrence's nor the start's zone is known, the day is taken as UTC.
fn until(end: NaiveDate, start: &When, zone: Option<Zone>) -> String {
    if let When::Date(_) = start {
        return end.format("%Y%m%d").to_string();
    }
    let tz = match zone {
        Some(Zone::Utc) => Some(Tz::UTC),
        Some(Zone::Known(_, tz)) => Some(tz),
        _ => None,
    }
    .or_else(|| start.tz())
    .unwrap_or(Tz::UTC);
    let last = end.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    let utc = tz
        .from_local_datetime(&last)
        .latest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| last.and_utc());
    utc_stamp(utc)
}

fn weekday(d: &str) -> Option<&'static str> {
    Some(match d.to_ascii_lowercase().as_str() {
        "monday" => "MO",
        "tuesday" => "TU",
        "wednesday" => "WE",
        "thursday" => "TH",
        "friday" => "FR",
        "saturday" => "SA",
        "sunday" => "SU",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn start_utc() -> When {
        When::Utc(parse_local("2026-03-02T09:00:00").unwrap())
    }

    fn rule(pattern: Value, range: Value) -> Result<String, String> {
        rrule(&json!({"pattern": pattern, "range": range}), &start_utc())
    }

    #[test]
    fn every_windows_zone_in_the_table_names_a_real_iana_zone() {
        for (win, iana) in WINDOWS_ZONES {
            assert!(
                iana.parse::<Tz>().is_ok(),
                "{win} → {iana} is not an IANA zone"
            );
        }
        assert_eq!(
            windows_to_iana("w. europe standard time"),
            Some("Europe/Berlin")
        );
        assert_eq!(windows_to_iana("Europe/Berlin"), None);
    }

    #[test]
    fn zone_names_are_recognised_as_utc_known_or_unknown() {
        assert!(matches!(Zone::of("UTC"), Zone::Utc));
        assert!(matches!(Zone::of("tzone://Microsoft/Utc"), Zone::Utc));
        assert!(
            matches!(Zone::of("Pacific Standard Time"), Zone::Known(n, _) if n == "America/Los_Angeles")
        );
        assert!(matches!(Zone::of("Asia/Tokyo"), Zone::Known(n, _) if n == "Asia/Tokyo"));
        assert!(
            matches!(Zone::of("Customized Time Zone"), Zone::Unknown(n) if n == "Customized Time Zone")
        );
    }

    #[test]
    fn rrule_daily_with_interval_and_count() {
        let r = rule(
            json!({"type": "daily", "interval": 2}),
            json!({"type": "numbered", "numberOfOccurrences": 10}),
        );
        assert_eq!(r.unwrap(), "FREQ=DAILY;INTERVAL=2;COUNT=10");
    }

    #[test]
    fn rrule_weekly_with_days_and_week_start_until_end_of_day_utc() {
        let r = rule(
            json!({"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "Wednesday"], "firstDayOfWeek": "sunday"}),
            json!({"type": "endDate", "endDate": "2026-06-30", "recurrenceTimeZone": "UTC"}),
        );
        assert_eq!(
            r.unwrap(),
            "FREQ=WEEKLY;BYDAY=MO,WE;WKST=SU;UNTIL=20260630T235959Z"
        );
    }

    #[test]
    fn rrule_until_follows_the_recurrence_time_zone() {
        // 23:59:59 on 30 June in Los Angeles (PDT, UTC-7) is 06:59:59 UTC on 1 July.
        let r = rule(
            json!({"type": "daily"}),
            json!({"type": "endDate", "endDate": "2026-06-30", "recurrenceTimeZone": "Pacific Standard Time"}),
        );
        assert_eq!(r.unwrap(), "FREQ=DAILY;UNTIL=20260701T065959Z");
    }

    #[test]
    fn rrule_until_is_a_date_for_all_day_events() {
        let day = When::Date(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        let r = rrule(
            &json!({"pattern": {"type": "daily"}, "range": {"type": "endDate", "endDate": "2026-03-09"}}),
            &day,
        );
        assert_eq!(r.unwrap(), "FREQ=DAILY;UNTIL=20260309");
    }

    #[test]
    fn rrule_monthly_and_yearly_patterns() {
        let no_end = json!({"type": "noEnd"});
        assert_eq!(
            rule(
                json!({"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 15}),
                no_end.clone()
            )
            .unwrap(),
            "FREQ=MONTHLY;BYMONTHDAY=15;INTERVAL=3"
        );
        assert_eq!(
            rule(json!({"type": "relativeMonthly", "daysOfWeek": ["monday","tuesday","wednesday","thursday","friday"], "index": "last"}), no_end.clone()).unwrap(),
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"
        );
        assert_eq!(
            rule(
                json!({"type": "absoluteYearly", "dayOfMonth": 29, "month": 2}),
                no_end.clone()
            )
            .unwrap(),
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"
        );
        assert_eq!(
            rule(json!({"type": "relativeYearly", "daysOfWeek": ["thursday"], "index": "fourth", "month": 11}), no_end).unwrap(),
            "FREQ=YEARLY;BYMONTH=11;BYDAY=TH;BYSETPOS=4"
        );
    }

    #[test]
    fn rrule_refuses_patterns_it_cannot_express() {
        let no_end = json!({"type": "noEnd"});
        assert!(
            rule(json!({"type": "hourly"}), no_end.clone())
                .unwrap_err()
                .contains("hourly")
        );
        assert!(
            rule(
                json!({"type": "relativeMonthly", "index": "first"}),
                no_end.clone()
            )
            .unwrap_err()
            .contains("daysOfWeek")
        );
        assert!(
            rule(json!({"type": "absoluteYearly", "dayOfMonth": 1}), no_end)
                .unwrap_err()
                .contains("month")
        );
        assert!(
            rule(json!({"type": "daily"}), json!({"type": "numbered"}))
                .unwrap_err()
                .contains("numberOfOccurrences")
        );
    }

    #[test]
    fn times_in_utc_known_and_unknown_zones() {
        let w = |v: Value, all_day| {
            let mut buf = Vec::new();
            When::of(&v, all_day)
                .unwrap()
                .write(&mut ContentWriter::new(&mut buf), "DTSTART")
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(
            w(
                json!({"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"}),
                false
            ),
            "DTSTART:20260302T090000Z\r\n"
        );
        assert_eq!(
            w(
                json!({"dateTime": "2026-03-02T00:00:00.0000000", "timeZone": "UTC"}),
                true
            ),
            "DTSTART;VALUE=DATE:20260302\r\n"
        );
        assert_eq!(
            w(
                json!({"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "Romance Standard Time"}),
                false
            ),
            "DTSTART;TZID=Europe/Paris:20260302T090000\r\n"
        );
        assert_eq!(
            w(
                json!({"dateTime": "2026-03-02T09:00:00", "timeZone": "(UTC+01:00) Somewhere, Custom"}),
                false
            ),
            "DTSTART;TZID=\"(UTC+01:00) Somewhere, Custom\":20260302T090000\r\n"
        );
    }
}
