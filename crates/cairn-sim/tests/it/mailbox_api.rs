//! The mailbox import/export API (`/admin/exchange/mailboxes/{id}/…`) and in-place archive
//! mailboxes: mailbox ids, folders and items (listing and delta), `exportItems` FastTransfer
//! streams, import sessions, auto-expanding archive redirects, permissions.

use crate::harness::{Outcome, Sim, TempDir, config, sha256_hex, small_spec, start};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cairn_sim::{SimApp, TenantSpec};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const FOLDERS_ONLY: &str = "20000000-0000-0000-0000-000000000001";
const READER: &str = "20000000-0000-0000-0000-000000000002";
const EXPORTER: &str = "20000000-0000-0000-0000-000000000003";
const SECRET: &str = "app-secret";

/// A tiny, independent reader of FastTransfer `messageContent` streams ([MS-OXCFXICS]
/// 2.2.4): tagged and named property values, markers. Enough to check what a stream says.
mod fts {
    pub const START_RECIP: u32 = 0x4003_0003;
    pub const END_TO_RECIP: u32 = 0x4004_0003;
    pub const NEW_ATTACH: u32 = 0x4000_0003;
    pub const END_ATTACH: u32 = 0x400E_0003;

    #[derive(Debug)]
    pub enum El {
        Marker(u32),
        /// (tag, name of a named property, raw value bytes)
        Prop(u32, Option<String>, Vec<u8>),
    }

    fn u32_at(d: &[u8], p: usize) -> u32 {
        u32::from_le_bytes([d[p], d[p + 1], d[p + 2], d[p + 3]])
    }

    pub fn read(d: &[u8]) -> Vec<El> {
        let mut out = Vec::new();
        let mut p = 0;
        while p < d.len() {
            let tag = u32_at(d, p);
            p += 4;
            if (0x4000..=0x4010).contains(&(tag >> 16)) && tag & 0xFFFF == 3 && tag != 0x4016_0003 {
                out.push(El::Marker(tag));
                continue;
            }
            let ty = tag & 0xFFFF;
            let mut name = None;
            if tag >> 16 >= 0x8000 {
                p += 16; // property set
                let kind = d[p];
                p += 1;
                if kind == 0 {
                    name = Some(format!("#{:x}", u32_at(d, p)));
                    p += 4;
                } else {
                    let mut units = vec![];
                    loop {
                        let u = u16::from_le_bytes([d[p], d[p + 1]]);
                        p += 2;
                        if u == 0 {
                            break;
                        }
                        units.push(u);
                    }
                    name = Some(String::from_utf16(&units).unwrap());
                }
            }
            let fixed = match ty {
                0x0002 | 0x000B => Some(2),
                0x0003 | 0x0004 | 0x000A => Some(4),
                0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => Some(8),
                0x0048 => Some(16),
                _ => None,
            };
            let val = if ty & 0x1000 != 0 {
                let n = u32_at(d, p) as usize;
                let start = p;
                p += 4;
                for _ in 0..n {
                    match fixed_of(ty & !0x1000) {
                        Some(k) => p += k,
                        None => p += 4 + u32_at(d, p) as usize,
                    }
                }
                d[start..p].to_vec()
            } else if let Some(k) = fixed {
                p += k;
                d[p - k..p].to_vec()
            } else {
                let n = u32_at(d, p) as usize;
                p += 4 + n;
                d[p - n..p].to_vec()
            };
            out.push(El::Prop(tag, name, val));
        }
        out
    }

    fn fixed_of(ty: u32) -> Option<usize> {
        match ty {
            0x0003 => Some(4),
            0x0040 | 0x0014 => Some(8),
            _ => None,
        }
    }

    pub fn utf16(b: &[u8]) -> String {
        let units: Vec<u16> = b
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        String::from_utf16(&units).unwrap()
    }

    /// The first value of a tagged property, before any recipient or attachment.
    pub fn prop(els: &[El], tag: u32) -> Option<Vec<u8>> {
        for e in els {
            match e {
                El::Marker(_) => return None,
                El::Prop(t, None, v) if *t == tag => return Some(v.clone()),
                _ => {}
            }
        }
        None
    }

    pub fn named<'a>(els: &'a [El], name: &str) -> Option<&'a [u8]> {
        els.iter().find_map(|e| match e {
            El::Prop(_, Some(n), v) if n == name => Some(v.as_slice()),
            _ => None,
        })
    }

    pub fn count(els: &[El], marker: u32) -> usize {
        els.iter()
            .filter(|e| matches!(e, El::Marker(m) if *m == marker))
            .count()
    }
}

const PID_TAG_SUBJECT: u32 = 0x0037_001F;
const PID_TAG_MESSAGE_CLASS: u32 = 0x001A_001F;

fn cfg() -> cairn_sim::SimConfig {
    let mut cfg = config(small_spec(81));
    cfg.apps = vec![
        SimApp::new(FOLDERS_ONLY, SECRET, &["MailboxFolder.Read.All"]),
        SimApp::new(
            READER,
            SECRET,
            &["MailboxFolder.Read.All", "MailboxItem.Read.All"],
        ),
        SimApp::new(
            EXPORTER,
            SECRET,
            &[
                "MailboxFolder.Read.All",
                "MailboxItem.Read.All",
                "MailboxItem.Export.All",
            ],
        ),
    ];
    cfg
}

fn user_id(sim: &Sim, idx: u32) -> String {
    sim.server.sim.model.tenant.user(idx).unwrap().id
}

/// One request with the default app's token (or `token`), no retries; (status, headers, body).
async fn send(
    sim: &Sim,
    method: &str,
    url: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = sim.abs(url);
    let mut rb = sim
        .http
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(t) = token.or(Some(&sim.token)).filter(|t| !t.is_empty()) {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, v)
}

async fn app_token(sim: &Sim, client_id: &str) -> String {
    let cfg = &sim.server.sim.cfg;
    let v: Value = sim
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", sim.url(), cfg.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// (primary, archive) mailbox ids of a user, from `/beta/users/{id}/settings/exchange`.
async fn mailbox_ids(sim: &Sim, idx: u32) -> (String, Option<String>) {
    let v = sim
        .get_ok(&format!(
            "{}/beta/users/{}/settings/exchange",
            sim.url(),
            user_id(sim, idx)
        ))
        .await;
    (
        v["primaryMailboxId"].as_str().unwrap().to_owned(),
        v["inPlaceArchiveMailboxId"].as_str().map(str::to_owned),
    )
}

fn mbx(id: &str) -> String {
    format!("/admin/exchange/mailboxes/{id}")
}

async fn export(sim: &Sim, mailbox: &str, ids: &[&str]) -> Vec<Value> {
    let (status, _, v) = send(
        sim,
        "POST",
        &format!("{}/exportItems", mbx(mailbox)),
        Some(json!({ "itemIds": ids })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["value"].as_array().unwrap().clone()
}

fn data_of(entry: &Value) -> Vec<u8> {
    STANDARD
        .decode(entry["data"].as_str().expect("data"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_exchange_gives_stable_mailbox_ids() {
    let spec = TenantSpec {
        users: 41,
        ..small_spec(81)
    };
    let sim = start(config(spec.clone())).await;
    let u1 = user_id(&sim, 1);
    let v1 = sim.get_ok(&format!("/users/{u1}/settings/exchange")).await;
    let primary = v1["primaryMailboxId"].as_str().unwrap().to_owned();
    assert!(primary.starts_with("MBX:") && primary.contains('@'), "{v1}");
    assert!(
        v1.get("inPlaceArchiveMailboxId").is_none(),
        "v1.0 has no archive id: {v1}"
    );
    let (p, archive) = mailbox_ids(&sim, 1).await;
    assert_eq!(p, primary);
    let archive = archive.expect("user 1 has an archive");
    assert_ne!(archive, primary);
    // A shared mailbox has a primary mailbox; an unlicensed user has none.
    let shared = sim
        .get_ok(&format!("/users/{}/settings/exchange", user_id(&sim, 24)))
        .await;
    assert!(shared["primaryMailboxId"].is_string());
    let (s, _, _) = send(
        &sim,
        "GET",
        &format!("/users/{}/settings/exchange", user_id(&sim, 39)),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);
    // About one licensed user in three has an archive.
    let mut archived = 0;
    for i in 0..41 {
        if sim.server.sim.model.tenant.has_archive(i) {
            archived += 1;
        }
    }
    assert!((5..=25).contains(&archived), "{archived} archives");
    // Stable across restarts: derived from the seed.
    let again = start(config(spec)).await;
    let (p2, a2) = mailbox_ids(&again, 1).await;
    assert_eq!((p2, a2), (primary, Some(archive)));
}

/// Every mail folder of `mailFolders` (hidden ones too), walked through `childFolders`:
/// id → (displayName, parentFolderId).
async fn mail_folder_tree(sim: &Sim, user: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut queue = vec![format!(
        "/users/{user}/mailFolders?includeHiddenFolders=true"
    )];
    while let Some(path) = queue.pop() {
        let (items, _) = sim.walk(&path, &[]).await.unwrap();
        for f in items {
            let id = f["id"].as_str().unwrap().to_owned();
            if f["childFolderCount"].as_u64().unwrap_or(0) > 0 {
                queue.push(format!(
                    "/users/{user}/mailFolders/{id}/childFolders?includeHiddenFolders=true"
                ));
            }
            out.insert(
                id,
                (
                    f["displayName"].as_str().unwrap().to_owned(),
                    f["parentFolderId"].as_str().unwrap_or("").to_owned(),
                ),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_tree_is_the_mail_folders_tree() {
    let sim = start(cfg()).await;
    let user = user_id(&sim, 1);
    let (primary, _) = mailbox_ids(&sim, 1).await;
    let want = mail_folder_tree(&sim, &user).await;
    // The flat folder delta, paged.
    let (all, delta) = sim
        .walk(
            &format!("{}/folders/delta", mbx(&primary)),
            &[("Prefer", "odata.maxpagesize=4")],
        )
        .await
        .unwrap();
    assert!(delta.is_some(), "a deltaLink at the end");
    let got: BTreeMap<String, (String, String)> = all
        .iter()
        .filter(|f| f["type"] == "IPF.Note")
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                (
                    f["displayName"].as_str().unwrap().to_owned(),
                    f["parentFolderId"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(got, want, "same folders, same ids, same parents");
    let types: BTreeSet<&str> = all.iter().filter_map(|f| f["type"].as_str()).collect();
    assert!(types.contains("IPF.Appointment") && types.contains("IPF.Contact"));
    for f in &all {
        for k in [
            "id",
            "displayName",
            "parentFolderId",
            "childFolderCount",
            "totalItemCount",
            "wellKnownName",
            "type",
            "parentMailboxUrl",
        ] {
            assert!(f.get(k).is_some(), "{k} missing in {f}");
        }
    }
    // The root's children, paged by $top with a nextLink; a folder and its children.
    let first = sim
        .get_ok(&format!("{}/folders?$top=3", mbx(&primary)))
        .await;
    assert_eq!(first["value"].as_array().unwrap().len(), 3);
    assert!(first["@odata.nextLink"].is_string());
    let inbox = sim
        .get_ok(&format!("{}/folders/inbox", mbx(&primary)))
        .await;
    assert_eq!(inbox["wellKnownName"], "inbox");
    assert_eq!(inbox["type"], "IPF.Note");
    let outlook_inbox = sim
        .get_ok(&format!("/users/{user}/mailFolders/inbox"))
        .await;
    assert_eq!(inbox["id"], outlook_inbox["id"]);
    assert_eq!(inbox["totalItemCount"], outlook_inbox["totalItemCount"]);
    let cals = sim
        .get_ok(&format!(
            "{}/folders?$filter=type eq 'IPF.Appointment'",
            mbx(&primary)
        ))
        .await;
    assert!(
        cals["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["type"] == "IPF.Appointment")
    );
    // Folder delta, a new folder, delta again.
    let (s, _, _) = send(
        &sim,
        "POST",
        &format!("/users/{user}/mailFolders"),
        Some(json!({"displayName": "Brand new"})),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let (changed, _) = sim.walk(&delta.unwrap(), &[]).await.unwrap();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["displayName"], "Brand new");
    // Folders made through this API are the Outlook API's folders.
    let folders = format!("{}/folders", mbx(&primary));
    let made = json!({"displayName": "Restored", "type": "IPF.Note"});
    let (s, _, v) = send(&sim, "POST", &folders, Some(made.clone()), None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["type"], "IPF.Note");
    assert_eq!(v["childFolderCount"], 0);
    let id = v["id"].as_str().unwrap();
    let outlook = sim.get_ok(&format!("/users/{user}/mailFolders/{id}")).await;
    assert_eq!(outlook["displayName"], "Restored");
    let (s, _, _) = send(&sim, "POST", &folders, Some(made), None).await;
    assert_eq!(s, 409, "a duplicate name");
    let (s, _, v) = send(
        &sim,
        "POST",
        &format!("{folders}/inbox/childFolders"),
        Some(json!({"displayName": "Under inbox", "type": "IPF.Note"})),
        None,
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(v["parentFolderId"], inbox["id"]);
    let (s, _, v) = send(
        &sim,
        "POST",
        &folders,
        Some(json!({"displayName": "People", "type": "IPF.Contact"})),
        None,
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(v["type"], "IPF.Contact");
}

#[tokio::test(flavor = "multi_thread")]
async fn items_are_the_messages_and_delta_tracks_changes() {
    let sim = start(cfg()).await;
    let user = user_id(&sim, 2);
    let (primary, _) = mailbox_ids(&sim, 2).await;
    let inbox = sim
        .get_ok(&format!("/users/{user}/mailFolders/inbox"))
        .await;
    let fid = inbox["id"].as_str().unwrap().to_owned();
    let items_path = format!("{}/folders/{fid}/items/delta", mbx(&primary));
    let (items, delta) = sim
        .walk(&items_path, &[("Prefer", "odata.maxpagesize=5")])
        .await
        .unwrap();
    let delta = delta.expect("deltaLink");
    let immutable = [("Prefer", "IdType=\"ImmutableId\"")];
    let (messages, _) = sim
        .walk(
            &format!("/users/{user}/mailFolders/inbox/messages/delta"),
            &immutable,
        )
        .await
        .unwrap();
    let item_ids: BTreeSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let message_ids: BTreeSet<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(item_ids, message_ids, "the same items, the same ids");
    for i in &items {
        assert_eq!(i["type"], "IPM.Note");
        assert!(i["size"].as_u64().unwrap() > 0);
        for k in [
            "changeKey",
            "createdDateTime",
            "lastModifiedDateTime",
            "categories",
        ] {
            assert!(i.get(k).is_some(), "{k} in {i}");
        }
    }
    // A plain listing pages too, and one item reads alone.
    let page = sim
        .get_ok(&format!("{}/folders/{fid}/items?$top=2", mbx(&primary)))
        .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert!(page["@odata.nextLink"].is_string());
    let one_id = items[0]["id"].as_str().unwrap();
    let one = sim
        .get_ok(&format!("{}/folders/{fid}/items/{one_id}", mbx(&primary)))
        .await;
    assert_eq!(one["changeKey"], items[0]["changeKey"]);
    // Mutations through the Outlook API: a delete and a change.
    let gone = items[0]["id"].as_str().unwrap();
    let changed = items[1]["id"].as_str().unwrap();
    let (s, _, _) = send(
        &sim,
        "DELETE",
        &format!("/users/{user}/messages/{gone}"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = send(
        &sim,
        "PATCH",
        &format!("/users/{user}/messages/{changed}"),
        Some(json!({"categories": ["Blue category"]})),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (delta_items, next) = sim.walk(&delta, &[]).await.unwrap();
    assert!(next.is_some());
    assert_eq!(delta_items.len(), 2, "{delta_items:?}");
    let removed = delta_items.iter().find(|i| i["id"] == gone).unwrap();
    assert_eq!(removed["@removed"]["reason"], "deleted");
    let updated = delta_items.iter().find(|i| i["id"] == changed).unwrap();
    assert_eq!(updated["categories"], json!(["Blue category"]));
    assert_ne!(updated["changeKey"], items[1]["changeKey"]);
    // Deletes through this API: soft to Recoverable Items (Deletions), hard for good.
    let next = next.unwrap();
    let soft = items[2]["id"].as_str().unwrap();
    let hard = items[3]["id"].as_str().unwrap();
    let item_url = |id: &str, how: &str| {
        format!(
            "{}/folders/{fid}/items/{id}?disposalType={how}",
            mbx(&primary)
        )
    };
    let (s, _, _) = send(&sim, "DELETE", &item_url(soft, "nope"), None, None).await;
    assert_eq!(s, 400, "disposalType is required");
    let (s, _, _) = send(&sim, "DELETE", &item_url(soft, "softDelete"), None, None).await;
    assert_eq!(s, 204);
    let (s, _, _) = send(&sim, "DELETE", &item_url(hard, "hardDelete"), None, None).await;
    assert_eq!(s, 204);
    let (delta_items, _) = sim.walk(&next, &[]).await.unwrap();
    let removed: BTreeSet<&str> = delta_items
        .iter()
        .filter(|i| i["@removed"].is_object())
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(removed, BTreeSet::from([soft, hard]));
    let recoverable = sim
        .get_ok(&format!(
            "{}/folders/recoverableitemsdeletions/items",
            mbx(&primary)
        ))
        .await;
    let ids: Vec<&str> = recoverable["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&soft) && !ids.contains(&hard), "{ids:?}");
    // Items delta takes `receivedDateTime ge {v}` (kept in its links) and no other filter.
    let (now_in_inbox, _) = sim
        .walk(&format!("/users/{user}/mailFolders/inbox/messages"), &[])
        .await
        .unwrap();
    let cut = now_in_inbox
        .iter()
        .filter_map(|m| m["receivedDateTime"].as_str())
        .max()
        .unwrap()
        .to_owned();
    let (recent, _) = sim
        .walk(
            &format!("{items_path}?$filter=receivedDateTime ge {cut}"),
            &[("Prefer", "odata.maxpagesize=1")],
        )
        .await
        .unwrap();
    assert_eq!(recent.len(), 1, "{recent:?}");
    let (s, _, _) = send(
        &sim,
        "GET",
        &format!("{items_path}?$filter=subject eq 'x'"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn export_items_answers_fast_transfer_streams() {
    let sim = start(cfg()).await;
    let user = user_id(&sim, 2);
    let (primary, _) = mailbox_ids(&sim, 2).await;
    let imm = [("Prefer", "IdType=\"ImmutableId\"")];
    let (messages, _) = sim
        .walk(&format!("/users/{user}/mailFolders/inbox/messages"), &imm)
        .await
        .unwrap();
    assert!(messages.len() >= 21);
    let ids: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let out = export(&sim, &primary, &ids[..20]).await;
    assert_eq!(out.len(), 20);
    for (e, id) in out.iter().zip(&ids) {
        assert_eq!(e["itemId"], *id);
        assert!(
            e["changeKey"].is_string() && e.get("error").is_none(),
            "{e}"
        );
    }
    // 21 ids: refused whole.
    let (s, _, v) = send(
        &sim,
        "POST",
        &format!("{}/exportItems", mbx(&primary)),
        Some(json!({ "itemIds": &ids[..21] })),
        None,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["code"].is_string() && v["error"]["innerError"].is_object());
    // Each stream says what the MIME says, and is the same on every export.
    let manifest = sim.manifest(&user).await;
    for (e, m) in out.iter().zip(&messages).take(8) {
        let data = data_of(e);
        let els = fts::read(&data);
        let subject = fts::utf16(&fts::prop(&els, PID_TAG_SUBJECT).unwrap());
        assert_eq!(
            fts::utf16(&fts::prop(&els, PID_TAG_MESSAGE_CLASS).unwrap()),
            "IPM.Note"
        );
        let id = m["id"].as_str().unwrap();
        let (status, mime, _) = sim
            .bytes(&format!("/users/{user}/messages/{id}/$value"), None)
            .await;
        assert_eq!(status, 200);
        let parsed = mail_parser::MessageParser::default().parse(&mime).unwrap();
        assert_eq!(Some(subject.as_str()), parsed.subject(), "subject of {id}");
        assert_eq!(subject, m["subject"].as_str().unwrap());
        let recipients = m["toRecipients"].as_array().unwrap().len()
            + m["ccRecipients"].as_array().unwrap().len();
        // The message's own recipients come before its attachments (which may embed
        // messages with recipients of their own).
        let top = els
            .iter()
            .position(|e| matches!(e, fts::El::Marker(fts::NEW_ATTACH)))
            .unwrap_or(els.len());
        assert_eq!(fts::count(&els[..top], fts::START_RECIP), recipients);
        assert_eq!(fts::count(&els[..top], fts::END_TO_RECIP), recipients);
        assert_eq!(
            fts::count(&els, fts::NEW_ATTACH),
            fts::count(&els, fts::END_ATTACH)
        );
        let cats = m["categories"].as_array().unwrap();
        assert_eq!(fts::named(&els, "Keywords").is_some(), !cats.is_empty());
        let again = export(&sim, &primary, &[id]).await;
        assert_eq!(data_of(&again[0]), data, "byte-identical until it changes");
        let entry = manifest.iter().find(|x| x["id"] == *id).unwrap();
        assert_eq!(entry["fxSha256"], sha256_hex(&data));
    }
    // An unknown id, and an id of another mailbox: per-item errors.
    let other = sim
        .walk(
            &format!("/users/{}/mailFolders/inbox/messages", user_id(&sim, 0)),
            &imm,
        )
        .await
        .unwrap()
        .0;
    let foreign = other[0]["id"].as_str().unwrap();
    let out = export(&sim, &primary, &["AAMkAnope", foreign, ids[0]]).await;
    assert_eq!(out[0]["error"]["code"], "ErrorItemNotFound");
    assert_eq!(out[1]["error"]["code"], "ErrorItemNotFound");
    assert!(out[2]["data"].is_string());
    // Events and contacts export with their message class.
    let events = sim.get_ok(&format!("/users/{user}/events?$top=1")).await;
    let contacts = sim.get_ok(&format!("/users/{user}/contacts?$top=1")).await;
    let eid = events["value"][0]["id"].as_str().unwrap();
    let cid = contacts["value"][0]["id"].as_str().unwrap();
    let out = export(&sim, &primary, &[eid, cid]).await;
    let class = |e: &Value| {
        let els = fts::read(&data_of(e));
        fts::utf16(&fts::prop(&els, PID_TAG_MESSAGE_CLASS).unwrap())
    };
    assert_eq!(class(&out[0]), "IPM.Appointment");
    assert_eq!(class(&out[1]), "IPM.Contact");
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_mailboxes_and_auto_expanding_redirects() {
    let sim = start(cfg()).await;
    let user = user_id(&sim, 1);
    let (_, archive) = mailbox_ids(&sim, 1).await;
    let archive = archive.unwrap();
    let beta = |p: &str| format!("{}/beta{}{p}", sim.url(), mbx(&archive));
    let roots = sim.get_ok(&beta("/folders")).await;
    let names: BTreeSet<&str> = roots["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    for n in ["Inbox", "2019", "2020", "Projects"] {
        assert!(names.contains(n), "{n} in {names:?}");
    }
    let folder = |name: &str| {
        roots["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["displayName"] == name)
            .unwrap()
            .clone()
    };
    // The archive's Inbox: items, older than the primary mailbox's, not served by Outlook.
    let inbox = folder("Inbox");
    let inbox_id = inbox["id"].as_str().unwrap();
    let (items, _) = sim
        .walk(&beta(&format!("/folders/{inbox_id}/items")), &[])
        .await
        .unwrap();
    assert!(!items.is_empty());
    assert_eq!(
        items.len() as u64,
        inbox["totalItemCount"].as_u64().unwrap()
    );
    assert!(items[0]["createdDateTime"].as_str().unwrap() < "2023-12-01");
    let item = items[0]["id"].as_str().unwrap();
    let (s, _, _) = send(
        &sim,
        "GET",
        &format!("/users/{user}/messages/{item}/$value"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404, "archive items are not in the Outlook API");
    let out = export(&sim, &archive, &[item]).await;
    assert!(out[0]["data"].is_string(), "{}", out[0]);
    // Projects/Old lives in the auxiliary archive, as does 2019.
    let projects = folder("Projects");
    let pid = projects["id"].as_str().unwrap();
    let kids = sim
        .get_ok(&beta(&format!("/folders/{pid}/childFolders")))
        .await;
    assert_eq!(kids["value"][0]["displayName"], "Old");
    let y2019 = folder("2019");
    let yid = y2019["id"].as_str().unwrap();
    assert_ne!(y2019["parentMailboxUrl"], projects["parentMailboxUrl"]);
    let (s, headers, _) = send(
        &sim,
        "GET",
        &beta(&format!("/folders/{yid}/items?$top=3")),
        None,
        None,
    )
    .await;
    assert_eq!(s, 308);
    let location = headers["location"].to_str().unwrap().to_owned();
    let aux_base = y2019["parentMailboxUrl"].as_str().unwrap();
    assert!(
        location.starts_with(&format!("{aux_base}/folders/{yid}/items")),
        "{location}"
    );
    assert!(location.contains("%24top=3") || location.contains("$top=3"));
    let aux_items = sim.walk(&location, &[]).await.unwrap().0;
    assert!(!aux_items.is_empty());
    let aux_item = aux_items[0]["id"].as_str().unwrap();
    let (s, headers, _) = send(&sim, "GET", &beta(&format!("/folders/{yid}")), None, None).await;
    assert_eq!(s, 308);
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("{aux_base}/folders/{yid}")
    );
    // Export through the main archive: the aux item points to the aux mailbox's exportItems.
    let out = export(&sim, &archive, &[item, aux_item]).await;
    assert!(out[0]["data"].is_string());
    assert_eq!(
        out[1]["error"]["code"],
        "ErrorArchiveFolderMovedPermanently"
    );
    let url = out[1]["error"]["message"].as_str().unwrap();
    // The URL of the exportItems to use: the auxiliary mailbox's, in the request's version.
    let aux_id = aux_base.rsplit('/').next().unwrap();
    assert_eq!(url, sim.abs(&format!("{}/exportItems", mbx(aux_id))));
    let (s, _, v) = send(
        &sim,
        "POST",
        url,
        Some(json!({"itemIds": [aux_item]})),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let aux_data = data_of(&v["value"][0]);
    // The manifest lists archive items with the hash of their stream.
    let manifest = sim.manifest(&user).await;
    let archived: Vec<&Value> = manifest
        .iter()
        .filter(|e| e["kind"] == "archiveItem")
        .collect();
    assert!(archived.len() >= items.len() + aux_items.len());
    let e = archived.iter().find(|e| e["id"] == aux_item).unwrap();
    assert_eq!(e["sha256"], sha256_hex(&aux_data));
    assert_eq!(e["path"], "2019");
    assert!(archived.iter().any(|e| e["path"] == "Projects/Old"));
    // Users without an archive have no archive entries.
    let plain = sim.manifest(&user_id(&sim, 2)).await;
    let has = sim.server.sim.model.tenant.has_archive(2);
    assert_eq!(plain.iter().any(|e| e["kind"] == "archiveItem"), has);
}

async fn import_url(sim: &Sim, mailbox: &str) -> String {
    let (s, _, v) = send(
        sim,
        "POST",
        &format!("{}/createImportSession", mbx(mailbox)),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["expirationDateTime"].is_string());
    v["importUrl"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn import_creates_items_that_export_identically() {
    let sim = start(cfg()).await;
    let user = user_id(&sim, 1);
    let (primary, archive) = mailbox_ids(&sim, 1).await;
    let archive = archive.unwrap();
    let imm = [("Prefer", "IdType=\"ImmutableId\"")];
    let (messages, _) = sim
        .walk(&format!("/users/{user}/mailFolders/inbox/messages"), &imm)
        .await
        .unwrap();
    let source = messages[3]["id"].as_str().unwrap();
    let data = export(&sim, &primary, &[source]).await[0]["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = import_url(&sim, &primary).await;
    let drafts = sim
        .get_ok(&format!("/users/{user}/mailFolders/drafts"))
        .await;
    let target = drafts["id"].as_str().unwrap();
    let body = json!({"FolderId": target, "Mode": "create", "Data": data});
    // The URL is pre-authenticated: no Authorization header.
    let (s, _, _) = send(&sim, "POST", &url, Some(body.clone()), None).await;
    assert_eq!(s, 401, "a bearer token is refused");
    let (s, _, _) = send(
        &sim,
        "POST",
        &format!("{url}x"),
        Some(body.clone()),
        Some(""),
    )
    .await;
    assert_eq!(s, 401, "a garbled URL is refused");
    let (s, _, v) = send(&sim, "POST", &url, Some(body), Some("")).await;
    assert_eq!(s, 200, "{v}");
    let new_id = v["itemId"].as_str().unwrap().to_owned();
    let change_key = v["changeKey"].as_str().unwrap().to_owned();
    let again = export(&sim, &primary, &[&new_id]).await;
    assert_eq!(again[0]["data"].as_str().unwrap(), data, "byte-identical");
    assert_eq!(again[0]["changeKey"], change_key.as_str());
    // It is in the folder, for both APIs.
    let (items, _) = sim
        .walk(&format!("{}/folders/{target}/items", mbx(&primary)), &[])
        .await
        .unwrap();
    assert!(items.iter().any(|i| i["id"] == new_id.as_str()));
    let msg = sim
        .get_ok(&format!("/users/{user}/messages/{new_id}"))
        .await;
    assert_eq!(msg["subject"], messages[3]["subject"]);
    let (status, mime, _) = sim
        .bytes(&format!("/users/{user}/messages/{new_id}/$value"), None)
        .await;
    assert_eq!(status, 200);
    let parsed = mail_parser::MessageParser::default().parse(&mime).unwrap();
    assert_eq!(parsed.subject(), messages[3]["subject"].as_str());
    // Update: another stream replaces it; the old change key no longer matches.
    let other = export(&sim, &primary, &[messages[4]["id"].as_str().unwrap()]).await[0]["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = json!({"FolderId": target, "Mode": "update", "Data": other, "ItemId": new_id, "ChangeKey": change_key});
    let (s, _, v) = send(&sim, "POST", &url, Some(update.clone()), Some("")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["itemId"], new_id.as_str());
    assert_ne!(v["changeKey"], change_key.as_str());
    assert_eq!(
        export(&sim, &primary, &[&new_id]).await[0]["data"],
        other.as_str()
    );
    let (s, _, _) = send(&sim, "POST", &url, Some(update), Some("")).await;
    assert_eq!(s, 400, "a stale change key");
    // Garbage data is refused.
    let (s, _, _) = send(
        &sim,
        "POST",
        &url,
        Some(json!({"FolderId": target, "Mode": "create", "Data": STANDARD.encode([1, 2, 3])})),
        Some(""),
    )
    .await;
    assert_eq!(s, 400);
    // Into the archive: a main-archive session for a folder of the auxiliary archive → 409.
    let aurl = import_url(&sim, &archive).await;
    let roots = sim
        .get_ok(&format!("{}/beta{}/folders", sim.url(), mbx(&archive)))
        .await;
    let by_name = |n: &str| {
        roots["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["displayName"] == n)
            .unwrap()
            .clone()
    };
    let y2019 = by_name("2019");
    let aux_url = y2019["parentMailboxUrl"].as_str().unwrap();
    let aux_id = aux_url.rsplit('/').next().unwrap();
    let (s, _, v) = send(
        &sim,
        "POST",
        &aurl,
        Some(json!({"FolderId": y2019["id"], "Mode": "create", "Data": data})),
        Some(""),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        v["Message"],
        format!("Invalid import session. The target session is expected in mailbox {aux_id}.")
    );
    let (s, _, v) = send(
        &sim,
        "POST",
        &aurl,
        Some(json!({"FolderId": by_name("2020")["id"], "Mode": "create", "Data": data})),
        Some(""),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let archived = v["itemId"].as_str().unwrap();
    assert_eq!(
        export(&sim, &archive, &[archived]).await[0]["data"],
        data.as_str()
    );
    let aux_session = import_url(&sim, aux_id).await;
    let (s, _, _) = send(
        &sim,
        "POST",
        &aux_session,
        Some(json!({"FolderId": y2019["id"], "Mode": "create", "Data": data})),
        Some(""),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_survive_a_restart() {
    let dir = TempDir::new("mbx-import");
    let mut c = config(small_spec(82));
    c.state_dir = Some(dir.0.clone());
    let sim = start(c.clone()).await;
    let user = user_id(&sim, 1);
    let (primary, _) = mailbox_ids(&sim, 1).await;
    let inbox = sim
        .get_ok(&format!("/users/{user}/mailFolders/inbox"))
        .await;
    let fid = inbox["id"].as_str().unwrap();
    let first = sim
        .get_ok(&format!("{}/folders/{fid}/items?$top=1", mbx(&primary)))
        .await;
    let data =
        export(&sim, &primary, &[first["value"][0]["id"].as_str().unwrap()]).await[0]["data"]
            .as_str()
            .unwrap()
            .to_owned();
    let url = import_url(&sim, &primary).await;
    let (s, _, v) = send(
        &sim,
        "POST",
        &url,
        Some(json!({"FolderId": fid, "Mode": "create", "Data": data})),
        Some(""),
    )
    .await;
    assert_eq!(s, 200);
    let id = v["itemId"].as_str().unwrap().to_owned();
    sim.server.stop().await;
    let sim = start(c).await;
    assert_eq!(
        export(&sim, &primary, &[&id]).await[0]["data"],
        data.as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn permissions_are_enforced() {
    let sim = start(cfg()).await;
    let (primary, _) = mailbox_ids(&sim, 1).await;
    let user = user_id(&sim, 1);
    let inbox = sim
        .get_ok(&format!("/users/{user}/mailFolders/inbox"))
        .await;
    let fid = inbox["id"].as_str().unwrap();
    let folders = format!("{}/folders", mbx(&primary));
    let items = format!("{}/folders/{fid}/items", mbx(&primary));
    let exp = format!("{}/exportItems", mbx(&primary));
    let imp = format!("{}/createImportSession", mbx(&primary));
    let body = json!({"itemIds": ["AAMkAnope"]});
    let folders_only = app_token(&sim, FOLDERS_ONLY).await;
    let reader = app_token(&sim, READER).await;
    let exporter = app_token(&sim, EXPORTER).await;
    let status = |r: (u16, reqwest::header::HeaderMap, Value)| {
        if r.0 == 403 {
            assert_eq!(r.2["error"]["code"], "ErrorAccessDenied");
        }
        r.0
    };
    assert_eq!(
        status(send(&sim, "GET", &folders, None, Some(&folders_only)).await),
        200
    );
    assert_eq!(
        status(send(&sim, "GET", &items, None, Some(&folders_only)).await),
        403
    );
    assert_eq!(
        status(send(&sim, "GET", &items, None, Some(&reader)).await),
        200
    );
    let new_folder = json!({"displayName": "X", "type": "IPF.Note"});
    assert_eq!(
        status(send(&sim, "POST", &folders, Some(new_folder), Some(&reader)).await),
        403
    );
    let delete = format!("{items}/AAMkAnope?disposalType=hardDelete");
    assert_eq!(
        status(send(&sim, "DELETE", &delete, None, Some(&reader)).await),
        403
    );
    assert_eq!(status(send(&sim, "DELETE", &delete, None, None).await), 404);
    assert_eq!(
        status(send(&sim, "POST", &exp, Some(body.clone()), Some(&reader)).await),
        403
    );
    assert_eq!(
        status(send(&sim, "POST", &exp, Some(body.clone()), Some(&exporter)).await),
        200
    );
    assert_eq!(
        status(send(&sim, "POST", &imp, None, Some(&exporter)).await),
        403
    );
    assert_eq!(status(send(&sim, "POST", &imp, None, None).await), 200);
    // The default app holds the mailbox permissions too.
    assert_eq!(status(send(&sim, "GET", &items, None, None).await), 200);
    let _ = Outcome::Ok(Value::Null);
}
