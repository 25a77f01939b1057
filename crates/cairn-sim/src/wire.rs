//! Requests and responses as the simulator's Graph handlers see them, independent of the HTTP
//! server, so `$batch` parts run through exactly the same code as direct calls.

use bytes::Bytes;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// Path below the version root, percent-decoded per segment, e.g. `/users/x/messages`.
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

    pub fn select(&self) -> Option<Vec<String>> {
        self.q("$select").map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
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
