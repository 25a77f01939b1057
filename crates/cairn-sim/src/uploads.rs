//! OneDrive upload sessions: `createUploadSession`, then ordered `PUT`s of 320 KiB multiples
//! to a pre-authenticated URL, committed when the last byte arrives.

use crate::keys::CollKey;
use crate::model::DriveNode;
use crate::sim::{Sim, UploadSession};
use crate::state::State;
use crate::wire::{Req, Resp};
use bytes::{Bytes, BytesMut};
use serde_json::json;

const FRAGMENT_UNIT: u64 = 320 * 1024;
const FRAGMENT_MAX: u64 = 60 * 1024 * 1024;

impl Sim {
    pub(crate) fn create_upload_session(
        &self,
        st: &State,
        req: &Req,
        c: CollKey,
        node: &DriveNode,
        pending: Option<String>,
    ) -> Resp {
        let body: serde_json::Value = if req.body.is_empty() {
            json!({})
        } else {
            match req.json_body() {
                Ok(b) => b,
                Err(e) => return e,
            }
        };
        let item = &body["item"];
        let behaviour = item["@microsoft.graph.conflictBehavior"]
            .as_str()
            .unwrap_or(if pending.is_some() { "fail" } else { "replace" })
            .to_string();
        if let Some(name) = &pending {
            if let Err(msg) = crate::graph::check_name(name) {
                return Resp::error(400, "invalidRequest", &msg);
            }
            // Fail early on a clash, as the service does for conflictBehavior=fail.
            if behaviour == "fail"
                && self
                    .model
                    .children(st, node)
                    .into_iter()
                    .filter_map(|k| self.model.drive_node(st, k))
                    .any(|n| !n.deleted && n.name.eq_ignore_ascii_case(name))
            {
                return Resp::error(
                    409,
                    "nameAlreadyExists",
                    "The specified item name already exists.",
                );
            }
        } else if node.folder {
            return Resp::bad_request("An upload session needs a file name.");
        }
        let total = item["fileSize"]
            .as_u64()
            .or_else(|| body["fileSize"].as_u64());
        let id = crate::seeded::guid(rand::random(), &[1]);
        let expires = chrono::Utc::now() + chrono::Duration::hours(1);
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                UploadSession {
                    coll: c,
                    target: node.key,
                    new_name: pending,
                    behaviour,
                    total,
                    data: BytesMut::new(),
                    expires,
                },
            );
        Resp::ok(json!({
            "uploadUrl": format!("{}/_up/{id}", req.base),
            "expirationDateTime": crate::content::iso(expires),
            "nextExpectedRanges": ["0-"],
        }))
    }

    /// `PUT {uploadUrl}` with `Content-Range`, `GET` (status) and `DELETE` (cancel).
    pub fn upload_fragment(&self, req: &Req, id: &str) -> Resp {
        if req.header("authorization").is_some() {
            return Resp::error(
                401,
                "unauthenticated",
                "Do not send an Authorization header to the upload URL.",
            );
        }
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sess) = uploads.get_mut(id) else {
            return Resp::error(404, "itemNotFound", "The upload session was not found.");
        };
        if sess.expires < chrono::Utc::now() {
            uploads.remove(id);
            return Resp::error(404, "itemNotFound", "The upload session has expired.");
        }
        match req.method.as_str() {
            "GET" => {
                return Resp::ok(json!({
                    "expirationDateTime": crate::content::iso(sess.expires),
                    "nextExpectedRanges": [format!("{}-", sess.data.len())],
                }));
            }
            "DELETE" => {
                uploads.remove(id);
                return Resp::empty(204);
            }
            "PUT" => {}
            _ => return Resp::bad_request("Unsupported upload operation."),
        }
        let Some((a, b, total)) = req.header("content-range").and_then(parse_content_range) else {
            return Resp::error(
                400,
                "invalidRequest",
                "Content-Range header is required: bytes a-b/total.",
            );
        };
        let len = req.body.len() as u64;
        if b < a || b - a + 1 != len {
            return Resp::error(
                400,
                "invalidRequest",
                "Content-Range does not match the body length.",
            );
        }
        if len > FRAGMENT_MAX {
            return Resp::error(
                413,
                "requestEntityTooLarge",
                "A fragment must be smaller than 60 MiB.",
            );
        }
        if *sess.total.get_or_insert(total) != total {
            return Resp::error(
                400,
                "invalidRequest",
                "The total size changed during the session.",
            );
        }
        let have = sess.data.len() as u64;
        if a != have {
            return Resp::error(
                416,
                "invalidRange",
                "The fragment overlaps or skips the expected range.",
            )
            .with_header("Content-Range", format!("bytes */{total}"));
        }
        let last = b + 1 == total;
        if !last && len % FRAGMENT_UNIT != 0 {
            return Resp::error(
                400,
                "invalidRequest",
                "Fragments must be a multiple of 320 KiB (327,680 bytes), except the last.",
            );
        }
        sess.data.extend_from_slice(&req.body);
        if !last {
            return Resp::json(
                202,
                json!({
                    "expirationDateTime": crate::content::iso(sess.expires),
                    "nextExpectedRanges": [format!("{}-", sess.data.len())],
                }),
            );
        }
        let Some(sess) = uploads.remove(id) else {
            return Resp::error(404, "itemNotFound", "The upload session was not found.");
        };
        drop(uploads);
        let mut st = self.state();
        let Some(node) = self.model.drive_node(&st, sess.target) else {
            return Resp::error(404, "itemNotFound", "The upload target no longer exists.");
        };
        let data: Bytes = sess.data.freeze();
        self.write_file(
            &mut st,
            req,
            sess.coll,
            &node,
            sess.new_name,
            data,
            &sess.behaviour,
        )
    }
}

fn parse_content_range(h: &str) -> Option<(u64, u64, u64)> {
    let spec = h.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}
