//! Coordinates of everything the simulator serves, and their wire identifiers.
//!
//! Generated objects are addressed by coordinates (resource, collection, index); identifiers
//! on the wire are opaque strings that encode those coordinates, so looking an id up needs no
//! table. Identifiers that do not decode are simply "not found", as on Graph.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A protected resource: a user (mailbox + OneDrive), a Microsoft 365 group, or a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Res {
    User(u32),
    Group(u32),
    /// Root sites are `0..sites+groups`; a subsite has `SUBSITE | parent`.
    Site(u32),
}

pub const SUBSITE: u32 = 1 << 24;

/// A collection of items inside a resource, the unit of delta tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Coll {
    MailFolder(u32),
    ContactFolder(u32),
    Calendar(u32),
    Drive(u32),
    List(u32),
    /// A conversation thread of a group's mailbox; its items are the thread's posts.
    Thread(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CollKey {
    pub res: Res,
    pub coll: Coll,
}

/// An item: generated (`Base`) or created later through the API or a mutation (`New`, by the
/// sequence number of its creation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ItemKey {
    Base(CollKey, u32),
    New(u64),
}

/// Folder numbers at or above this were created after generation.
pub const NEW_FOLDER: u32 = 1 << 20;

fn res_text(r: Res) -> String {
    match r {
        Res::User(i) => format!("u{i}"),
        Res::Group(i) => format!("g{i}"),
        Res::Site(i) => format!("s{i}"),
    }
}

fn parse_res(s: &str) -> Option<Res> {
    let (k, n) = s.split_at_checked(1)?;
    let n: u32 = n.parse().ok()?;
    match k {
        "u" => Some(Res::User(n)),
        "g" => Some(Res::Group(n)),
        "s" => Some(Res::Site(n)),
        _ => None,
    }
}

fn coll_text(c: Coll) -> String {
    match c {
        Coll::MailFolder(i) => format!("m{i}"),
        Coll::ContactFolder(i) => format!("c{i}"),
        Coll::Calendar(i) => format!("e{i}"),
        Coll::Drive(i) => format!("d{i}"),
        Coll::List(i) => format!("l{i}"),
        Coll::Thread(i) => format!("t{i}"),
    }
}

fn parse_coll(s: &str) -> Option<Coll> {
    let (k, n) = s.split_at_checked(1)?;
    let n: u32 = n.parse().ok()?;
    match k {
        "m" => Some(Coll::MailFolder(n)),
        "c" => Some(Coll::ContactFolder(n)),
        "e" => Some(Coll::Calendar(n)),
        "d" => Some(Coll::Drive(n)),
        "l" => Some(Coll::List(n)),
        "t" => Some(Coll::Thread(n)),
        _ => None,
    }
}

fn wrap(prefix: &str, text: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(text))
}

fn unwrap(prefix: &str, id: &str) -> Option<String> {
    let rest = id.strip_prefix(prefix)?;
    let bytes = URL_SAFE_NO_PAD.decode(rest).ok()?;
    String::from_utf8(bytes).ok()
}

/// Prefix of Outlook item ids (messages, events, contacts).
pub const OUTLOOK_PREFIX: &str = "AAMkA";
/// Prefix of drive item ids.
pub const DRIVE_ITEM_PREFIX: &str = "01";

pub fn item_id(prefix: &str, k: ItemKey) -> String {
    match k {
        ItemKey::Base(c, n) => wrap(
            prefix,
            &format!("b.{}.{}.{n}", res_text(c.res), coll_text(c.coll)),
        ),
        ItemKey::New(seq) => wrap(prefix, &format!("n.{seq}")),
    }
}

pub fn parse_item_id(prefix: &str, id: &str) -> Option<ItemKey> {
    let text = unwrap(prefix, id)?;
    let parts: Vec<&str> = text.split('.').collect();
    match parts.as_slice() {
        ["b", r, c, n] => Some(ItemKey::Base(
            CollKey {
                res: parse_res(r)?,
                coll: parse_coll(c)?,
            },
            n.parse().ok()?,
        )),
        ["n", seq] => Some(ItemKey::New(seq.parse().ok()?)),
        _ => None,
    }
}

/// Ids of collections (mail folders, contact folders, calendars, drives, lists).
pub fn coll_id(c: CollKey) -> String {
    let prefix = match c.coll {
        Coll::Drive(_) => "b!",
        _ => "AAMkAF",
    };
    wrap(
        prefix,
        &format!("{}.{}", res_text(c.res), coll_text(c.coll)),
    )
}

pub fn parse_coll_id(id: &str) -> Option<CollKey> {
    let text = unwrap("b!", id).or_else(|| unwrap("AAMkAF", id))?;
    let (r, c) = text.split_once('.')?;
    Some(CollKey {
        res: parse_res(r)?,
        coll: parse_coll(c)?,
    })
}

/// Prefix of conversation thread ids, as Exchange's (`AAQkA…`).
pub const THREAD_PREFIX: &str = "AAQkA";

/// Id of a group conversation thread.
pub fn thread_id(c: CollKey) -> String {
    wrap(
        THREAD_PREFIX,
        &format!("{}.{}", res_text(c.res), coll_text(c.coll)),
    )
}

/// Parses a thread id; anything else (a folder id, garbage) is `None`.
pub fn parse_thread_id(id: &str) -> Option<CollKey> {
    let text = unwrap(THREAD_PREFIX, id)?;
    let (r, c) = text.split_once('.')?;
    let c = CollKey {
        res: parse_res(r)?,
        coll: parse_coll(c)?,
    };
    matches!((c.res, c.coll), (Res::Group(_), Coll::Thread(_))).then_some(c)
}

/// Ids of list items are small integers per list, as in SharePoint.
pub const NEW_LIST_ITEM: u64 = 1_000_000;

pub fn list_item_id(k: ItemKey) -> String {
    match k {
        ItemKey::Base(_, n) => (n + 1).to_string(),
        ItemKey::New(seq) => (NEW_LIST_ITEM + seq).to_string(),
    }
}

pub fn parse_list_item_id(list: CollKey, id: &str) -> Option<ItemKey> {
    let n: u64 = id.parse().ok()?;
    if n >= NEW_LIST_ITEM {
        Some(ItemKey::New(n - NEW_LIST_ITEM))
    } else if n >= 1 {
        Some(ItemKey::Base(list, (n - 1) as u32))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let c = CollKey {
            res: Res::Site(SUBSITE | 3),
            coll: Coll::Drive(2),
        };
        let k = ItemKey::Base(c, 42);
        assert_eq!(
            parse_item_id(DRIVE_ITEM_PREFIX, &item_id(DRIVE_ITEM_PREFIX, k)),
            Some(k)
        );
        assert_eq!(parse_coll_id(&coll_id(c)), Some(c));
        let n = ItemKey::New(77);
        assert_eq!(
            parse_item_id(OUTLOOK_PREFIX, &item_id(OUTLOOK_PREFIX, n)),
            Some(n)
        );
        assert_eq!(parse_item_id(OUTLOOK_PREFIX, "garbage"), None);
        assert_eq!(parse_list_item_id(c, &list_item_id(k)), Some(k));
        assert_eq!(parse_list_item_id(c, &list_item_id(n)), Some(n));
        let t = CollKey {
            res: Res::Group(3),
            coll: Coll::Thread(1),
        };
        assert_eq!(parse_thread_id(&thread_id(t)), Some(t));
        assert_eq!(parse_thread_id(&coll_id(c)), None);
    }
}
