//! What every catalog store does, whatever it keeps its tables in: each test is a function
//! of a [`Store`], run once against SQLite and once against PostgreSQL (`both!` below).

use crate::stores::Store;
use cairn_catalog::{Catalog, ItemRow, Query, ResourceKind};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Barrier};

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let store = crate::stores::Sqlite::new();
                    super::$name(&store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let store = crate::stores::Pg::new(stringify!($name));
                    super::$name(&store);
                }
            )*
        }
    };
}

both!(
    versions_hold_intervals_and_old_points_stay_readable,
    changes_between_points_pair_the_versions_of_each_item,
    forgotten_points_leave_with_the_versions_only_they_held,
    a_move_reported_by_the_old_folder_does_not_remove_the_item,
    a_resync_removes_what_the_fresh_enumeration_does_not_see_again,
    unstage_all_leaves_the_committed_state,
    staged_changes_survive_reopening,
    resources_are_one_per_tenant_and_name,
    documents_are_kept_by_kind_and_id,
    an_unreadable_item_is_dropped_from_the_next_point,
    a_repaired_snapshot_keeps_its_points,
    searches_filter_by_every_field,
    walks_stream_in_order_and_stop_when_told,
    two_workers_commit_different_resources_at_once,
    two_workers_commit_one_resource_in_turn,
    a_resource_raced_from_eight_threads_has_one_id,
    the_catalog_is_usable_from_async_code,
);

fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap()
}

fn row(item: &str, scope: &str, path: &str, change: &str) -> ItemRow {
    ItemRow {
        item: item.into(),
        scope: scope.into(),
        kind: "message".into(),
        path: path.into(),
        size: 10,
        mtime: from_micros(1_700_000_000_000_000),
        change: change.into(),
        subject: Some(format!("Subject of {item}")),
        ..ItemRow::default()
    }
}

fn next(c: &dyn Catalog, res: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    c.for_each_next(res, &mut |r| {
        out.push((r.item, r.path));
        true
    })
    .unwrap();
    out
}

fn at(c: &dyn Catalog, res: i64, seq: i64) -> Vec<String> {
    let mut out = Vec::new();
    c.for_each_at(res, seq, "", &mut |r| {
        out.push(format!("{}@{}", r.item, r.change));
        true
    })
    .unwrap();
    out
}

fn versions_hold_intervals_and_old_points_stay_readable(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "alice").unwrap().id;
    c.stage_put(res, &row("a", "mail:inbox", "mail/Inbox/a.eml", "1"))
        .unwrap();
    c.stage_put(res, &row("b", "mail:inbox", "mail/Inbox/b.eml", "1"))
        .unwrap();
    c.stage_token(res, "mail:inbox", Some("link1")).unwrap();
    assert_eq!(
        c.token(res, "mail:inbox").unwrap().as_deref(),
        Some("link1")
    );
    let r1 = c.commit(res, "snap1", Utc::now()).unwrap();
    assert_eq!((r1.seq, r1.added, r1.changed, r1.removed), (1, 2, 0, 0));

    // Point 2: a changes, b is deleted, c arrives.
    c.stage_put(res, &row("a", "mail:inbox", "mail/Inbox/a.eml", "2"))
        .unwrap();
    assert!(c.stage_remove(res, "mail:inbox", "b").unwrap());
    c.stage_put(res, &row("c", "mail:inbox", "mail/Inbox/c.eml", "1"))
        .unwrap();
    assert_eq!(
        next(c, res).into_iter().map(|x| x.0).collect::<Vec<_>>(),
        ["a", "c"]
    );
    // Not committed yet: the link still read is the staged one only after staging.
    assert_eq!(
        c.token(res, "mail:inbox").unwrap().as_deref(),
        Some("link1")
    );
    c.stage_token(res, "mail:inbox", Some("link2")).unwrap();
    let r2 = c.commit(res, "snap2", Utc::now()).unwrap();
    assert_eq!((r2.seq, r2.added, r2.changed, r2.removed), (2, 1, 1, 1));
    assert_eq!(at(c, res, 1), ["a@1", "b@1"]);
    assert_eq!(at(c, res, 2), ["a@2", "c@1"]);
    assert_eq!(
        c.token(res, "mail:inbox").unwrap().as_deref(),
        Some("link2")
    );
    assert_eq!(c.staged(res).unwrap(), 0);
    let hits = c
        .find(&Query {
            text: Some("subject of B".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1);
    // Case folds in every script, not in ASCII only.
    c.stage_put(
        res,
        &ItemRow {
            subject: Some("Отчёт за квартал".into()),
            ..row("q", "mail:inbox", "mail/Inbox/q.eml", "1")
        },
    )
    .unwrap();
    c.commit(res, "snap3", Utc::now()).unwrap();
    for typed in ["отчёт", "ОТЧЁТ ЗА"] {
        let found = c
            .find(&Query {
                text: Some(typed.into()),
                ..Query::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1, "{typed}");
    }
    assert_eq!(hits[0].first.snapshot, "snap1");
    assert_eq!(hits[0].last.as_ref().map(|p| p.seq), Some(1));
}

fn changes_between_points_pair_the_versions_of_each_item(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "alice").unwrap().id;
    for i in ["a", "b", "c", "d"] {
        c.stage_put(
            res,
            &row(i, "mail:inbox", &format!("mail/Inbox/{i}.eml"), "1"),
        )
        .unwrap();
    }
    c.commit(res, "snap1", Utc::now()).unwrap();
    // Point 2: a changes, b goes, e arrives; point 3: d moves, e goes, f arrives.
    c.stage_put(res, &row("a", "mail:inbox", "mail/Inbox/a.eml", "2"))
        .unwrap();
    c.stage_remove(res, "mail:inbox", "b").unwrap();
    c.stage_put(res, &row("e", "mail:inbox", "mail/Inbox/e.eml", "1"))
        .unwrap();
    c.commit(res, "snap2", Utc::now()).unwrap();
    c.stage_put(res, &row("d", "mail:old", "mail/Old/d.eml", "2"))
        .unwrap();
    c.stage_remove(res, "mail:inbox", "e").unwrap();
    c.stage_put(res, &row("f", "mail:inbox", "mail/Inbox/f.eml", "1"))
        .unwrap();
    c.commit(res, "snap3", Utc::now()).unwrap();
    let diff = |from, to| {
        let mut out = Vec::new();
        c.changes(res, from, to, &mut |ch| {
            let item = ch.old.as_ref().or(ch.new.as_ref()).unwrap().item.clone();
            out.push(format!(
                "{item}:{}>{}",
                ch.old.map(|o| o.change).unwrap_or_default(),
                ch.new.map(|n| n.change).unwrap_or_default()
            ));
            true
        })
        .unwrap();
        out
    };
    assert_eq!(diff(1, 2), ["a:1>2", "b:1>", "e:>1"]);
    assert_eq!(diff(2, 3), ["d:1>2", "e:1>", "f:>1"]);
    // Across two runs: e came and went, and is no change at all.
    assert_eq!(diff(1, 3), ["a:1>2", "b:1>", "d:1>2", "f:>1"]);
    let mut first = Vec::new();
    c.changes(res, 1, 3, &mut |ch| {
        first.push(ch);
        false
    })
    .unwrap();
    assert_eq!(first.len(), 1, "the walk stops when told");
    let counts = c.count_at(res, 2).unwrap();
    assert_eq!(counts.get("message"), Some(&4));
    let mut versions = Vec::new();
    c.for_each_version(res, &mut |r, first, last| {
        versions.push(format!("{}{first}-{}", r.item, last.unwrap_or(0)));
        true
    })
    .unwrap();
    assert_eq!(
        versions,
        [
            "a1-1", "a2-0", "b1-1", "c1-0", "d1-2", "d3-0", "e2-2", "f3-0"
        ]
    );
    let held = c
        .snapshots_matching(&Query {
            text: Some("subject of e".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(held, ["snap2"]);
    assert_eq!(c.remove_versions(res, &["a".into()]).unwrap(), 2);
    assert_eq!(at(c, res, 1), ["b@1", "c@1", "d@1"]);
}

fn forgotten_points_leave_with_the_versions_only_they_held(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "erin").unwrap().id;
    c.stage_put(res, &row("a", "s", "mail/a.eml", "1")).unwrap();
    c.stage_put(res, &row("b", "s", "mail/b.eml", "1")).unwrap();
    c.commit(res, "s1", Utc::now()).unwrap();
    c.stage_put(res, &row("a", "s", "mail/a.eml", "2")).unwrap();
    c.commit(res, "s2", Utc::now()).unwrap();
    c.stage_remove(res, "s", "b").unwrap();
    c.commit(res, "s3", Utc::now()).unwrap();
    // b@1 lives in 1..=2, a@1 in 1..=1: forgetting point 1 keeps b, drops a@1.
    assert_eq!(c.forget_snapshots(&["s1".into()]).unwrap(), 1);
    let seqs: Vec<i64> = c.points(res).unwrap().iter().map(|p| p.seq).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(at(c, res, 2), ["a@2", "b@1"]);
    let hits = c
        .find(&Query {
            text: Some("subject of a".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1, "a@1 is gone, a@2 stays");
    assert_eq!(c.forget_snapshots(&["s2".into()]).unwrap(), 1);
    assert_eq!(at(c, res, 3), ["a@2"]);
    let all = c
        .find(&Query {
            kind: Some("message".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(all.len(), 1, "b is in no point any more");
    // A point forgotten twice, or unknown, counts once, or not at all.
    assert_eq!(
        c.forget_snapshots(&["s3".into(), "s3".into(), "nope".into()])
            .unwrap(),
        1
    );
    assert!(c.points(res).unwrap().is_empty());
}

fn a_move_reported_by_the_old_folder_does_not_remove_the_item(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "bob").unwrap().id;
    c.stage_put(res, &row("m", "mail:a", "mail/A/m.eml", "1"))
        .unwrap();
    c.commit(res, "s1", Utc::now()).unwrap();
    // The new folder's delta comes first, then the old folder reports a removal.
    c.stage_put(res, &row("m", "mail:b", "mail/B/m.eml", "2"))
        .unwrap();
    assert!(!c.stage_remove(res, "mail:a", "m").unwrap());
    assert_eq!(
        next(c, res),
        [("m".to_string(), "mail/B/m.eml".to_string())]
    );
    // In the other order the removal is taken back by the arrival.
    c.commit(res, "s2", Utc::now()).unwrap();
    assert!(c.stage_remove(res, "mail:b", "m").unwrap());
    let l = c.lookup(res, "m").unwrap();
    assert_eq!(l.current.unwrap().change, "2");
    assert!(l.staged.unwrap().1, "staged as removed");
    c.stage_put(res, &row("m", "mail:a", "mail/A/m.eml", "3"))
        .unwrap();
    assert_eq!(
        next(c, res),
        [("m".to_string(), "mail/A/m.eml".to_string())]
    );
    // Nothing committed or staged in that scope: nothing to remove.
    assert!(!c.stage_remove(res, "mail:z", "nothing").unwrap());
}

fn a_resync_removes_what_the_fresh_enumeration_does_not_see_again(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "carol").unwrap().id;
    for i in ["x", "y", "z"] {
        c.stage_put(res, &row(i, "drive:d", &format!("onedrive/{i}"), "1"))
            .unwrap();
    }
    c.stage_put(res, &row("o", "drive:other", "onedrive2/o", "1"))
        .unwrap();
    c.stage_token(res, "drive:d", Some("old")).unwrap();
    c.commit(res, "s1", Utc::now()).unwrap();
    assert_eq!(c.stage_resync(res, "drive:d").unwrap(), 3);
    c.stage_token(res, "drive:d", None).unwrap();
    assert_eq!(c.token(res, "drive:d").unwrap(), None);
    // Seen again unchanged: x (unstaged); changed: y; z is gone.
    c.unstage(res, "x").unwrap();
    c.stage_put(res, &row("y", "drive:d", "onedrive/y", "2"))
        .unwrap();
    let mut seen = Vec::new();
    c.items_in_scope(res, "drive:d", &mut |i| seen.push(i))
        .unwrap();
    seen.sort();
    assert_eq!(seen, ["x", "y"]);
    let r = c.commit(res, "s2", Utc::now()).unwrap();
    assert_eq!((r.added, r.changed, r.removed), (0, 1, 1));
    // Component-wise order: `onedrive/…` before `onedrive2/…`.
    assert_eq!(at(c, res, 2), ["x@1", "y@2", "o@1"]);
    assert_eq!(c.token(res, "drive:d").unwrap(), None);
    assert_eq!(c.scopes(res).unwrap(), ["drive:d", "drive:other"]);
}

fn unstage_all_leaves_the_committed_state(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "erin").unwrap().id;
    c.stage_put(res, &row("a", "mail:i", "mail/I/a.eml", "1"))
        .unwrap();
    c.commit(res, "s1", Utc::now()).unwrap();
    c.stage_put(res, &row("b", "mail:i", "mail/I/b.eml", "1"))
        .unwrap();
    assert!(c.stage_remove(res, "mail:i", "a").unwrap());
    assert_eq!(c.unstage_all(res).unwrap(), 2);
    assert_eq!(c.staged(res).unwrap(), 0);
    assert_eq!(
        next(c, res),
        [("a".to_string(), "mail/I/a.eml".to_string())]
    );
}

fn staged_changes_survive_reopening(s: &dyn Store) {
    {
        let c = s.reopen();
        let res = c.resource("t", ResourceKind::User, "dave").unwrap().id;
        let mut r = row("a", "mail:i", "mail/I/a.eml", "1");
        r.spool = Some("/spool/a".into());
        c.stage_put(res, &r).unwrap();
        c.stage_token(res, "mail:i", Some("l")).unwrap();
    }
    let c = s.reopen();
    let res = c.resource("t", ResourceKind::User, "dave").unwrap().id;
    let l = c.lookup(res, "a").unwrap();
    assert!(l.current.is_none());
    let (staged, removed) = l.staged.unwrap();
    assert!(!removed);
    assert_eq!(staged.spool.as_deref(), Some("/spool/a"));
    assert_eq!(c.token(res, "mail:i").unwrap().as_deref(), Some("l"));
    // The spool is where the run found the content: never committed.
    c.commit(res, "s1", Utc::now()).unwrap();
    let l = c.lookup(res, "a").unwrap();
    assert_eq!(l.current.unwrap().spool, None);
    assert!(l.staged.is_none());
}

fn resources_are_one_per_tenant_and_name(s: &dyn Store) {
    let c = s.catalog();
    let a = c
        .resource("t2", ResourceKind::Group, "group:sales")
        .unwrap();
    let b = c
        .resource("t1", ResourceKind::Group, "group:sales")
        .unwrap();
    let u = c
        .resource("t1", ResourceKind::User, "Zoe@x.example")
        .unwrap();
    let site = c
        .resource(
            "t1",
            ResourceKind::Site,
            "https://x.sharepoint.com/sites/hr",
        )
        .unwrap();
    assert_ne!(a.id, b.id, "two tenants, two resources");
    // A kind registered stands: a later call with another kind gets the same resource.
    let again = c.resource("t2", ResourceKind::User, "group:sales").unwrap();
    assert_eq!(again, a);
    assert_eq!(again.kind, ResourceKind::Group);
    let all: Vec<(String, String)> = c
        .resources()
        .unwrap()
        .into_iter()
        .map(|r| (r.tenant, r.name))
        .collect();
    // Ordered by tenant and name, bytewise (upper case before lower case).
    assert_eq!(
        all,
        [
            ("t1".to_string(), "Zoe@x.example".to_string()),
            ("t1".to_string(), "group:sales".to_string()),
            ("t1".to_string(), site.name.clone()),
            ("t2".to_string(), "group:sales".to_string()),
        ]
    );
    assert_eq!(u.kind, ResourceKind::User);
    assert_eq!(site.kind, ResourceKind::Site);
}

fn documents_are_kept_by_kind_and_id(s: &dyn Store) {
    let c = s.catalog();
    c.put_doc("hold", "b", r#"{"n":1}"#).unwrap();
    c.put_doc("hold", "a", r#"{"n":2}"#).unwrap();
    c.put_doc("findings", "a", r#"{"n":3}"#).unwrap();
    c.put_doc("hold", "b", r#"{"n":4}"#).unwrap();
    assert_eq!(
        c.docs("hold").unwrap(),
        [
            ("a".to_string(), r#"{"n":2}"#.to_string()),
            ("b".to_string(), r#"{"n":4}"#.to_string())
        ]
    );
    assert!(c.delete_doc("hold", "a").unwrap());
    assert!(!c.delete_doc("hold", "a").unwrap());
    assert_eq!(c.docs("hold").unwrap().len(), 1);
    assert_eq!(c.docs("findings").unwrap().len(), 1);
    assert!(c.docs("nothing").unwrap().is_empty());
}

fn an_unreadable_item_is_dropped_from_the_next_point(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "fay").unwrap().id;
    c.stage_put(res, &row("a", "mail:i", "mail/I/a.eml", "1"))
        .unwrap();
    c.commit(res, "s1", Utc::now()).unwrap();
    c.stage_put(res, &row("b", "mail:i", "mail/I/b.eml", "1"))
        .unwrap();
    // Committed and staged items alike; unknown paths are nothing.
    assert_eq!(
        c.drop_from_next(res, "mail/I/a.eml").unwrap().as_deref(),
        Some("mail:i")
    );
    assert_eq!(
        c.drop_from_next(res, "mail/I/b.eml").unwrap().as_deref(),
        Some("mail:i")
    );
    assert_eq!(c.drop_from_next(res, "mail/I/zz.eml").unwrap(), None);
    assert!(next(c, res).is_empty());
    let r = c.commit(res, "s2", Utc::now()).unwrap();
    assert_eq!((r.added, r.changed, r.removed), (0, 0, 1));
    assert!(at(c, res, 2).is_empty());
}

fn a_repaired_snapshot_keeps_its_points(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "gus").unwrap().id;
    let time = from_micros(1_750_000_000_123_456);
    c.stage_put(res, &row("a", "mail:i", "mail/I/a.eml", "1"))
        .unwrap();
    c.commit(res, "old", time).unwrap();
    assert_eq!(c.replace_snapshot("old", "new").unwrap(), 1);
    assert_eq!(c.replace_snapshot("old", "new").unwrap(), 0);
    let points = c.points(res).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].snapshot, "new");
    assert_eq!(points[0].time, time, "times keep their microseconds");
}

fn searches_filter_by_every_field(s: &dyn Store) {
    let c = s.catalog();
    let a = c.resource("t1", ResourceKind::User, "ann").unwrap().id;
    let b = c.resource("t2", ResourceKind::User, "ben").unwrap().id;
    let day = |d: i64| from_micros(1_700_000_000_000_000 + d * 86_400_000_000);
    for (res, item, size, sender, date) in [
        (a, "m1", 100, "Boss <boss@x.example>", 1),
        (a, "m2", 5_000, "Friend <f@y.example>", 5),
        (b, "m3", 50, "BOSS <boss@x.example>", 9),
    ] {
        c.stage_put(
            res,
            &ItemRow {
                size,
                sender: Some(sender.into()),
                recipients: Some("Team <team@x.example>".into()),
                date: Some(day(date)),
                name: Some(format!("{item} 100%_done\\")),
                ..row(item, "mail:i", &format!("mail/I/{item}.eml"), "1")
            },
        )
        .unwrap();
        c.commit(res, &format!("s-{item}"), Utc::now()).unwrap();
    }
    let items = |q: Query| -> Vec<String> {
        c.find(&q)
            .unwrap()
            .into_iter()
            .map(|h| format!("{}/{}", h.resource.name, h.row.item))
            .collect()
    };
    assert_eq!(
        items(Query {
            person: Some("boss@".into()),
            ..Query::default()
        }),
        ["ann/m1", "ben/m3"]
    );
    assert_eq!(
        items(Query {
            person: Some("TEAM".into()),
            tenant: Some("t1".into()),
            ..Query::default()
        }),
        ["ann/m1", "ann/m2"]
    );
    assert_eq!(
        items(Query {
            resources: vec![b],
            ..Query::default()
        }),
        ["ben/m3"]
    );
    assert_eq!(
        items(Query {
            after: Some(day(2)),
            before: Some(day(9)),
            ..Query::default()
        }),
        ["ann/m2"]
    );
    assert_eq!(
        items(Query {
            min_size: Some(50),
            max_size: Some(100),
            ..Query::default()
        }),
        ["ann/m1", "ben/m3"]
    );
    assert_eq!(
        items(Query {
            limit: Some(2),
            ..Query::default()
        }),
        ["ann/m1", "ann/m2"]
    );
    // `%` and `_` are wildcards, a backslash is a character.
    assert_eq!(
        items(Query {
            text: Some("m2 100%_DONE\\".into()),
            ..Query::default()
        }),
        ["ann/m2"]
    );
    assert_eq!(
        items(Query {
            text: Some("m_ 1".into()),
            ..Query::default()
        })
        .len(),
        3
    );
    assert!(
        items(Query {
            kind: Some("event".into()),
            ..Query::default()
        })
        .is_empty()
    );
    let hit = &c
        .find(&Query {
            text: Some("m3".into()),
            ..Query::default()
        })
        .unwrap()[0];
    assert_eq!(hit.first.snapshot, "s-m3");
    assert!(hit.last.is_none(), "still current");
    assert_eq!(hit.row.date, Some(day(9)));
    let mut held = c
        .snapshots_matching(&Query {
            person: Some("boss".into()),
            limit: Some(1),
            ..Query::default()
        })
        .unwrap();
    held.sort();
    // m1 is in both points of ann, m3 in ben's; the limit is for listing only.
    assert_eq!(held, ["s-m1", "s-m2", "s-m3"]);
}

fn walks_stream_in_order_and_stop_when_told(s: &dyn Store) {
    let c = s.catalog();
    let res = c.resource("t", ResourceKind::User, "hal").unwrap().id;
    // More items than one batch of a cursor, staged in an order that is not the walk's.
    let n = 1_234;
    for i in (0..n).rev() {
        c.stage_put(
            res,
            &row(&format!("i{i}"), "drive:d", &format!("files/{i:05}"), "1"),
        )
        .unwrap();
    }
    let paths: Vec<String> = next(c, res).into_iter().map(|x| x.1).collect();
    assert_eq!(paths.len(), n);
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "in repository order");
    c.commit(res, "s1", Utc::now()).unwrap();
    let mut count = 0;
    c.for_each_at(res, 1, "files/001", &mut |_| {
        count += 1;
        true
    })
    .unwrap();
    assert_eq!(count, 100);
    // A callback may stop the walk, and may call the catalog while it walks.
    let mut seen = Vec::new();
    c.for_each_at(res, 1, "", &mut |r| {
        let l = c.lookup(res, &r.item).unwrap();
        assert_eq!(l.current.unwrap().path, r.path);
        seen.push(r.item);
        seen.len() < 3
    })
    .unwrap();
    assert_eq!(seen, ["i0", "i1", "i2"]);
    let mut versions = 0;
    c.for_each_version(res, &mut |_, _, _| {
        versions += 1;
        versions < 10
    })
    .unwrap();
    assert_eq!(versions, 10);
    // After walks stopped half-way the catalog still answers.
    assert_eq!(
        c.count_at(res, 1).unwrap().get("message"),
        Some(&(n as u64))
    );
    let mut in_scope = 0;
    c.items_in_scope(res, "drive:d", &mut |_| in_scope += 1)
        .unwrap();
    assert_eq!(in_scope, n);
}

fn two_workers_commit_different_resources_at_once(s: &dyn Store) {
    let workers = [s.worker(), s.worker()];
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        for (w, c) in workers.iter().enumerate() {
            let start = &start;
            scope.spawn(move || {
                let res = c
                    .resource("t", ResourceKind::User, &format!("user{w}"))
                    .unwrap()
                    .id;
                start.wait();
                for point in 1..=5 {
                    for i in 0..20 {
                        c.stage_put(
                            res,
                            &row(
                                &format!("m{i}"),
                                "mail:i",
                                &format!("mail/{i}.eml"),
                                &point.to_string(),
                            ),
                        )
                        .unwrap();
                    }
                    let r = c
                        .commit(res, &format!("w{w}-p{point}"), Utc::now())
                        .unwrap();
                    assert_eq!(r.seq, point);
                    assert_eq!(r.added + r.changed, 20);
                }
            });
        }
    });
    let c = s.catalog();
    for r in c.resources().unwrap() {
        let points = c.points(r.id).unwrap();
        assert_eq!(points.len(), 5, "{}", r.name);
        assert_eq!(at(c, r.id, 5).len(), 20);
        assert_eq!(c.staged(r.id).unwrap(), 0);
    }
}

fn two_workers_commit_one_resource_in_turn(s: &dyn Store) {
    let workers = [s.worker(), s.worker()];
    let res = s
        .catalog()
        .resource("t", ResourceKind::User, "ida")
        .unwrap()
        .id;
    let start = Barrier::new(2);
    let seqs: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(w, c)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    (0..5)
                        .map(|p| c.commit(res, &format!("w{w}-{p}"), Utc::now()).unwrap().seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut seqs = seqs;
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=10).collect::<Vec<_>>(),
        "each point its own number"
    );
}

fn a_resource_raced_from_eight_threads_has_one_id(s: &dyn Store) {
    let workers: Vec<Arc<dyn Catalog>> = (0..8).map(|_| s.worker()).collect();
    let start = Barrier::new(workers.len());
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter()
            .map(|c| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    c.resource("t", ResourceKind::Site, "https://x.example/sites/a")
                        .unwrap()
                        .id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
    let all = s.catalog().resources().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].kind, ResourceKind::Site);
}

/// The trait is synchronous and async code calls it directly, on either kind of runtime.
fn the_catalog_is_usable_from_async_code(s: &dyn Store) {
    let c = s.worker();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = current.block_on(async {
        let res = c.resource("t", ResourceKind::User, "jan").unwrap().id;
        c.stage_put(res, &row("a", "mail:i", "mail/I/a.eml", "1"))
            .unwrap();
        res
    });
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let task = {
        let c = c.clone();
        multi.spawn(async move {
            let r = c.commit(res, "s1", Utc::now()).unwrap();
            let mut items = Vec::new();
            c.for_each_at(res, r.seq, "", &mut |r| {
                items.push(r.item);
                true
            })
            .unwrap();
            items
        })
    };
    assert_eq!(multi.block_on(task).unwrap(), ["a"]);
}
