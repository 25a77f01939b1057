//! Requests and responses as the simulator's Graph handlers see them, independent of the HTTP
//! server, so `$batch` parts run through exactly the same code as direct calls; and the one
//! normalisation of request paths (`canonical_path`) every request goes through before
//! authorisation, throttling and routing, so that handlers see a single spelling of each
//! form Graph accepts.

use bytes::Bytes;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// Path below the version root in canonical form (`canonical_path`), segments still
    /// percent-encoded, e.g. `/users/x/messages`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Service root of this server, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    /// Fault injection asked this request to repeat an item across pages.
    pub duplicate_page_item: bool,
}

impl Req {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Prefer: odata.maxpagesize=N`.
    pub fn max_page_size(&self) -> Option<u32> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("prefer"))
            .flat_map(|(_, v)| v.split(','))
            .find_map(|p| {
                p.trim()
                    .strip_prefix("odata.maxpagesize=")
                    .and_then(|n| n.trim().parse().ok())
            })
    }

    /// Whether a `Prefer` header holds `pref` (e.g. `hierarchicalsharing`).
    pub fn prefers(&self, pref: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("prefer"))
            .flat_map(|(_, v)| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case(pref))
    }

    pub fn immutable_ids(&self) -> bool {
        self.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("prefer")
                && v.to_ascii_lowercase().contains("idtype=\"immutableid\"")
        })
    }

    pub fn json_body(&self) -> Result<Value, Resp> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Resp::error(
                400,
                "BadRequest",
                &format!("Unable to read JSON request payload: {e}"),
            )
        })
    }

    /// The properties `$select` keeps, with the relationships `$expand` adds (an expanded
    /// relationship is shown whatever `$select` says).
    pub fn select(&self) -> Option<Vec<String>> {
        self.q("$select").map(|s| {
            let expanded = self
                .q("$expand")
                .or_else(|| self.q("expand"))
                .map(crate::odata::parse_expand)
                .unwrap_or_default();
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .chain(expanded.into_iter().map(|(name, _)| name))
                .collect()
        })
    }
}

#[derive(Clone, Debug)]
pub enum Body {
    Empty,
    Json(Value),
    Bytes(Bytes, String),
}

#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Resp {
    pub fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            headers: vec![],
            body: Body::Json(v),
        }
    }

    pub fn ok(v: Value) -> Self {
        Self::json(200, v)
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: Body::Empty,
        }
    }

    pub fn bytes(status: u16, data: Bytes, content_type: &str) -> Self {
        Self {
            status,
            headers: vec![],
            body: Body::Bytes(data, content_type.to_string()),
        }
    }

    /// Graph's error shape: `{"error":{"code","message","innerError":{…}}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let request_id = crate::seeded::guid(rand::random(), &[0]);
        Self::json(
            status,
            json!({"error": {"code": code, "message": message, "innerError": {
                "date": now, "request-id": request_id, "client-request-id": request_id,
            }}}),
        )
    }

    /// An error with a nested inner error code, as the files service reports throttling.
    pub fn nested_error(status: u16, code: &str, inner: &str, message: &str) -> Self {
        let mut r = Self::error(status, code, message);
        if let Body::Json(v) = &mut r.body {
            v["error"]["innerError"]["code"] = json!(inner);
        }
        r
    }

    pub fn with_header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn not_found_outlook() -> Self {
        Self::error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    pub fn not_found_files() -> Self {
        Self::error(404, "itemNotFound", "The resource could not be found.")
    }

    pub fn not_found_directory(what: &str) -> Self {
        Self::error(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn bad_request(msg: &str) -> Self {
        Self::error(400, "BadRequest", msg)
    }
}

/// Keeps only the selected properties (plus ids and annotations), as `$select` does.
pub fn apply_select(v: &mut Value, select: &Option<Vec<String>>) {
    let (Some(sel), Some(obj)) = (select, v.as_object_mut()) else {
        return;
    };
    obj.retain(|k, _| {
        k == "id" || k.starts_with('@') || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
    });
}

/// Segment names the simulator serves, in Graph's spelling. Graph matches segment names
/// without regard to case (`/Users`, `mailfolders`); routing compares against these.
const SEGMENTS: &[&str] = &[
    "$batch",
    "$count",
    "$ref",
    "$value",
    "allChannels",
    "attachments",
    "calendar",
    "calendars",
    "calendarView",
    "channels",
    "chats",
    "childFolders",
    "children",
    "completeMigration",
    "contactFolders",
    "contacts",
    "content",
    "conversations",
    "createUploadSession",
    "delta",
    "drive",
    "drives",
    "events",
    "fields",
    "getAllMessages",
    "getAllSites",
    "groups",
    "hostedContents",
    "items",
    "lists",
    "mailboxSettings",
    "mailFolders",
    "me",
    "members",
    "messages",
    "move",
    "permissions",
    "posts",
    "replies",
    "root",
    "sites",
    "startMigration",
    "tabs",
    "teams",
    "threads",
    "users",
    "versions",
];

/// Of `SEGMENTS`, the OData functions: `name(p='v')` passes parameters, not a key.
const FUNCTIONS: &[&str] = &["delta", "getAllMessages", "getAllSites"];

/// Outlook's well-known folder names (usable as folder ids, any case).
const WELL_KNOWN_FOLDERS: &[&str] = &[
    "archive",
    "clutter",
    "conflicts",
    "conversationhistory",
    "deleteditems",
    "drafts",
    "inbox",
    "junkemail",
    "localfailures",
    "msgfolderroot",
    "outbox",
    "recoverableitemsdeletions",
    "recoverableitemsroot",
    "scheduled",
    "searchfolders",
    "sentitems",
    "serverfailures",
    "syncissues",
];

/// What a key taken out of `name('key')` must escape to stay one path segment.
const SEGMENT_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Brings a Graph path (below the version root, percent-encoded) to the one form routing
/// matches, as Graph accepts each of these as the same request:
/// - function calls with OData's call syntax or namespace: `delta()`,
///   `microsoft.graph.delta()`, `getAllSites()` → `delta`, `getAllSites`; function
///   parameters (`delta(token='x')`) become query parameters unless the query has them;
/// - keys in parentheses: `users('id')`, `mailFolders('Inbox')` → `users/id`, …;
/// - segment names in any case (`MailFolders`) → Graph's spelling; well-known folder names
///   after `mailFolders` → lower case.
///
/// OneDrive path addressing (`root:/a/b.txt:/content`) is left as it is between the colons:
/// those are item names.
pub fn canonical_path(raw: &str, query: &mut Vec<(String, String)>) -> String {
    let Some(start) = raw
        .find(":/")
        .or_else(|| raw.ends_with(':').then(|| raw.len() - 1))
    else {
        return canonical_segments(raw, query);
    };
    let head = canonical_segments(&raw[..start], query);
    let after = &raw[start + 1..];
    match after.find(':') {
        Some(end) => format!(
            "{head}:{}{}",
            &after[..=end],
            canonical_segments(&after[end + 1..], query)
        ),
        None => format!("{head}:{after}"),
    }
}

fn canonical_segments(raw: &str, query: &mut Vec<(String, String)>) -> String {
    let mut out: Vec<String> = Vec::new();
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
        let (name, args) = match decoded.strip_suffix(')').and_then(|d| d.split_once('(')) {
            Some((name, args)) => (name, Some(args)),
            None => (decoded.as_ref(), None),
        };
        // `microsoft.graph.delta` is the qualified name of `delta`.
        let bare = name
            .get(..16)
            .filter(|p| p.eq_ignore_ascii_case("microsoft.graph."))
            .map_or(name, |_| &name[16..]);
        let known = SEGMENTS
            .iter()
            .find(|s| s.eq_ignore_ascii_case(bare))
            .copied();
        match (known, args) {
            (Some(name), None) | (Some(name), Some("")) => out.push(name.to_string()),
            (Some(name), Some(args)) if FUNCTIONS.contains(&name) => {
                for (k, v) in function_params(args) {
                    if !query.iter().any(|(q, _)| q.eq_ignore_ascii_case(&k)) {
                        query.push((k, v));
                    }
                }
                out.push(name.to_string());
            }
            (Some(name), Some(args)) => {
                out.push(name.to_string());
                let key = key_literal(args);
                out.push(match well_known(&out, &key) {
                    Some(w) => w.to_string(),
                    None => {
                        percent_encoding::utf8_percent_encode(&key, SEGMENT_ESCAPES).to_string()
                    }
                });
            }
            (None, _) => match well_known(&out, &decoded) {
                Some(w) => out.push(w.to_string()),
                None => out.push(seg.to_string()),
            },
        }
    }
    let mut path = String::new();
    for s in out {
        path.push('/');
        path.push_str(&s);
    }
    path
}

/// A well-known folder name in canonical (lower) case, if `key` is one used as a folder id
/// (right after `mailFolders`).
fn well_known(before: &[String], key: &str) -> Option<&'static str> {
    if before.last().is_some_and(|p| p == "mailFolders") {
        WELL_KNOWN_FOLDERS
            .iter()
            .find(|w| w.eq_ignore_ascii_case(key))
            .copied()
    } else {
        None
    }
}

/// The value of a key in parentheses: `'a''b'` → `a'b`; `id='x'` → `x`; `42` → `42`.
fn key_literal(args: &str) -> String {
    let args = args.trim();
    let value = match args.split_once('=') {
        Some((name, v)) if !name.contains('\'') => v.trim(),
        _ => args,
    };
    unquote(value)
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => v.to_string(),
    }
}

/// `token='x',other=1` → [(token, x), (other, 1)], commas inside quotes kept.
fn function_params(args: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), unquote(v.trim())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> (String, Vec<(String, String)>) {
        let mut q = Vec::new();
        let p = canonical_path(raw, &mut q);
        (p, q)
    }

    #[test]
    fn function_calls_lose_their_parentheses() {
        assert_eq!(
            canon("/users/u/mailFolders/f/messages/delta()").0,
            "/users/u/mailFolders/f/messages/delta"
        );
        assert_eq!(
            canon("/drives/d/items/root/microsoft.graph.delta()").0,
            "/drives/d/items/root/delta"
        );
        assert_eq!(canon("/sites/getAllSites()").0, "/sites/getAllSites");
        assert_eq!(
            canon("/drives/d/root/delta(token='abc')"),
            (
                "/drives/d/root/delta".into(),
                vec![("token".into(), "abc".into())]
            )
        );
    }

    #[test]
    fn keys_in_parentheses_become_segments() {
        assert_eq!(
            canon("/users('a%40b.com')/mailFolders('Inbox')/messages").0,
            "/users/a@b.com/mailFolders/inbox/messages"
        );
        assert_eq!(canon("/users('it''s')").0, "/users/it's");
        assert_eq!(canon("/groups(id='g1')").0, "/groups/g1");
        assert_eq!(canon("/users('a%2Fb')").0, "/users/a%2Fb");
    }

    #[test]
    fn names_are_matched_without_case() {
        assert_eq!(
            canon("/Users/U1/MAILFOLDERS/SentItems/childfolders").0,
            "/users/U1/mailFolders/sentitems/childFolders"
        );
        assert_eq!(canon("/$Batch").0, "/$batch");
        // Ids keep their case; a well-known name only counts after mailFolders.
        assert_eq!(canon("/users/Inbox").0, "/users/Inbox");
    }

    #[test]
    fn path_addressing_is_left_alone() {
        assert_eq!(
            canon("/Drives/d/Root:/Delta()/Items(1).txt:/Content").0,
            "/drives/d/root:/Delta()/Items(1).txt:/content"
        );
        assert_eq!(canon("/drives/d/root:/a:").0, "/drives/d/root:/a:");
        assert_eq!(canon("/drives/d/root:").0, "/drives/d/root:");
    }
}
