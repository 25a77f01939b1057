//! What changed since generation: an overlay of item states over the generated tenant, a
//! change log that delta queries read, and content stored by uploads and mutations.
//!
//! With `--state DIR` every change is appended to a journal (and content to `blobs/`) before
//! it becomes visible, so delta tokens and restored items survive a restart.

use crate::keys::{CollKey, ItemKey, Res};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Message,
    Event,
    Contact,
    DriveItem,
    ListItem,
    /// A post of a group conversation thread.
    Post,
}

/// Content stored for an item, by blob id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobRef {
    pub id: u64,
    pub len: u64,
}

/// Generated content that replaced the original (a file edited or encrypted by a mutation).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GenContent {
    pub seed: u64,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Content {
    Blob(BlobRef),
    Generated(GenContent),
    /// Uniformly random bytes (`seeded::noise_range`): a file encrypted by ransomware.
    Noise(GenContent),
}

/// An earlier version of a file that changed after generation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VersionRec {
    pub content: Content,
    pub modified: String,
}

/// The current state of an item that changed after generation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemState {
    pub kind: Kind,
    pub coll: CollKey,
    /// Drive items: the parent folder item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ItemKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub folder: bool,
    #[serde(default)]
    pub deleted: bool,
    /// Bumped on every change; part of change keys and eTags.
    pub rev: u32,
    /// Property overrides (base items) or all properties (created items).
    #[serde(default)]
    pub props: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Versions before the generated ones were superseded, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionRec>,
    pub modified: String,
    pub created: String,
    /// The FastTransfer stream an item was imported with (mailbox import API): exports
    /// return it byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx: Option<Box<FxRef>>,
}

/// A FastTransfer stream stored for an imported item.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FxRef {
    pub blob: BlobRef,
    /// Its `PidTagMessageClass` (`IPM.Note`, `IPM.Appointment`, …).
    pub class: String,
}

/// A mail or contact folder created after generation, or a generated one renamed/deleted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FolderState {
    pub coll: CollKey,
    pub name: String,
    pub parent: Option<u32>,
    pub deleted: bool,
    pub rev: u32,
}

#[derive(Serialize, Deserialize)]
enum Record {
    Meta {
        instance: u64,
    },
    Put {
        seq: u64,
        key: ItemKey,
        state: ItemState,
        from: Option<CollKey>,
    },
    Folder {
        seq: u64,
        state: FolderState,
    },
    Floor {
        seq: u64,
    },
    Blob {
        id: u64,
        len: u64,
    },
}

/// One entry of a collection's change log.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    pub seq: u64,
    pub key: ItemKey,
}

pub struct State {
    /// Random per state; delta tokens of another instance are unknown (410).
    pub instance: u64,
    pub seq: u64,
    /// Tokens older than this are evicted (410 resync).
    pub floor: u64,
    pub items: HashMap<ItemKey, ItemState>,
    pub by_coll: HashMap<CollKey, Vec<Change>>,
    pub folders: HashMap<CollKey, FolderState>,
    /// Folder changes per mailbox, for `mailFolders/delta`.
    pub folder_log: HashMap<Res, Vec<(u64, CollKey)>>,
    blobs: HashMap<u64, Bytes>,
    next_blob: u64,
    dir: Option<PathBuf>,
    journal: Option<File>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("seq", &self.seq)
            .field("items", &self.items.len())
            .finish()
    }
}

impl State {
    /// Opens (or creates) the state; `None` keeps everything in memory.
    pub fn open(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut st = State {
            instance: rand::random::<u64>() >> 12,
            seq: 0,
            floor: 0,
            items: HashMap::new(),
            by_coll: HashMap::new(),
            folders: HashMap::new(),
            folder_log: HashMap::new(),
            blobs: HashMap::new(),
            next_blob: 1,
            dir: dir.map(Path::to_path_buf),
            journal: None,
        };
        let Some(dir) = dir else {
            return Ok(st);
        };
        std::fs::create_dir_all(dir.join("blobs"))?;
        let path = dir.join("journal.jsonl");
        let fresh = !path.exists();
        if !fresh {
            let reader = BufReader::new(File::open(&path)?);
            for line in reader.lines() {
                let line = line?;
                // A torn last line (killed mid-write) is ignored, as it was never acknowledged.
                let Ok(rec) = serde_json::from_str::<Record>(&line) else {
                    continue;
                };
                st.apply(rec);
            }
        }
        st.journal = Some(OpenOptions::new().create(true).append(true).open(&path)?);
        if fresh {
            st.write(&Record::Meta {
                instance: st.instance,
            })?;
        }
        Ok(st)
    }

    fn apply(&mut self, rec: Record) {
        match rec {
            Record::Meta { instance } => self.instance = instance,
            Record::Put {
                seq,
                key,
                state,
                from,
            } => self.apply_put(seq, key, state, from),
            Record::Folder { seq, state } => self.apply_folder(seq, state),
            Record::Floor { seq } => self.floor = seq,
            Record::Blob { id, len: _ } => self.next_blob = self.next_blob.max(id + 1),
        }
    }

    fn write(&mut self, rec: &Record) -> anyhow::Result<()> {
        if let Some(j) = self.journal.as_mut() {
            let mut line = serde_json::to_vec(rec)?;
            line.push(b'\n');
            j.write_all(&line)?;
            j.flush()?;
        }
        Ok(())
    }

    fn apply_put(&mut self, seq: u64, key: ItemKey, state: ItemState, from: Option<CollKey>) {
        self.seq = self.seq.max(seq);
        let to = state.coll;
        self.by_coll
            .entry(to)
            .or_default()
            .push(Change { seq, key });
        if let Some(from) = from
            && from != to
        {
            self.by_coll
                .entry(from)
                .or_default()
                .push(Change { seq, key });
        }
        self.items.insert(key, state);
    }

    fn apply_folder(&mut self, seq: u64, state: FolderState) {
        self.seq = self.seq.max(seq);
        self.folder_log
            .entry(state.coll.res)
            .or_default()
            .push((seq, state.coll));
        self.folders.insert(state.coll, state);
    }

    /// Records a new state of an item; `from` is the collection it was in before (moves).
    pub fn put(
        &mut self,
        key: ItemKey,
        state: ItemState,
        from: Option<CollKey>,
    ) -> anyhow::Result<u64> {
        let seq = self.seq + 1;
        self.write(&Record::Put {
            seq,
            key,
            state: state.clone(),
            from,
        })?;
        self.apply_put(seq, key, state, from);
        Ok(seq)
    }

    /// Reserves the sequence number a new item will be created with.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    pub fn put_folder(&mut self, state: FolderState) -> anyhow::Result<u64> {
        let seq = self.seq + 1;
        self.write(&Record::Folder {
            seq,
            state: state.clone(),
        })?;
        self.apply_folder(seq, state);
        Ok(seq)
    }

    /// Evicts every delta token issued so far: their next use answers 410.
    pub fn expire_tokens(&mut self) -> anyhow::Result<()> {
        let seq = self.seq + 1;
        self.write(&Record::Floor { seq })?;
        self.floor = seq;
        self.seq = seq;
        Ok(())
    }

    pub fn put_blob(&mut self, data: Bytes) -> anyhow::Result<BlobRef> {
        let id = self.next_blob;
        self.next_blob += 1;
        let len = data.len() as u64;
        if let Some(dir) = &self.dir {
            let path = dir.join("blobs").join(id.to_string());
            let mut f = File::create(&path)?;
            f.write_all(&data)?;
            f.sync_data()?;
            self.write(&Record::Blob { id, len })?;
        } else {
            self.blobs.insert(id, data);
        }
        Ok(BlobRef { id, len })
    }

    pub fn blob(&self, b: &BlobRef) -> Option<Bytes> {
        if let Some(data) = self.blobs.get(&b.id) {
            return Some(data.clone());
        }
        let dir = self.dir.as_ref()?;
        std::fs::read(dir.join("blobs").join(b.id.to_string()))
            .ok()
            .map(Bytes::from)
    }

    /// Items that changed in `coll` after `since`, each once, in change order.
    pub fn changes_since(&self, coll: CollKey, since: u64, upto: u64) -> Vec<ItemKey> {
        let Some(log) = self.by_coll.get(&coll) else {
            return vec![];
        };
        let start = log.partition_point(|c| c.seq <= since);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for c in &log[start..] {
            if c.seq > upto {
                break;
            }
            if seen.insert(c.key) {
                out.push(c.key);
            }
        }
        out
    }

    /// Items that are in `coll` now but were not generated there (created or moved in),
    /// as of `upto`, in first-arrival order.
    pub fn arrivals(&self, coll: CollKey, upto: u64) -> Vec<ItemKey> {
        let Some(log) = self.by_coll.get(&coll) else {
            return vec![];
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for c in log {
            if c.seq > upto {
                break;
            }
            if matches!(c.key, ItemKey::Base(k, _) if k == coll) {
                continue;
            }
            if seen.insert(c.key) {
                out.push(c.key);
            }
        }
        out.retain(|k| {
            self.items
                .get(k)
                .is_some_and(|s| s.coll == coll && !s.deleted)
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Coll;

    fn coll(n: u32) -> CollKey {
        CollKey {
            res: Res::User(1),
            coll: Coll::MailFolder(n),
        }
    }

    fn st(c: CollKey) -> ItemState {
        ItemState {
            kind: Kind::Message,
            coll: c,
            parent: None,
            name: None,
            folder: false,
            deleted: false,
            rev: 1,
            props: Map::new(),
            content: None,
            versions: vec![],
            modified: "2026-11-01T00:00:00Z".into(),
            created: "2026-11-01T00:00:00Z".into(),
            fx: None,
        }
    }

    #[test]
    fn journal_survives_reopen_and_torn_tail() {
        let dir = std::env::temp_dir().join(format!("cairn-sim-state-{}", rand::random::<u64>()));
        let instance;
        {
            let mut s = State::open(Some(&dir)).unwrap();
            instance = s.instance;
            let b = s.put_blob(Bytes::from_static(b"hello")).unwrap();
            let mut a = st(coll(1));
            a.content = Some(Content::Blob(b));
            s.put(ItemKey::New(1), a, None).unwrap();
            s.put(ItemKey::Base(coll(1), 3), st(coll(2)), Some(coll(1)))
                .unwrap();
        }
        // A torn record at the end, as after kill -9 mid-write.
        let mut j = OpenOptions::new()
            .append(true)
            .open(dir.join("journal.jsonl"))
            .unwrap();
        j.write_all(b"{\"Put\":{\"seq\":9").unwrap();
        drop(j);
        let s = State::open(Some(&dir)).unwrap();
        assert_eq!(s.instance, instance);
        assert_eq!(s.seq, 2);
        assert_eq!(s.changes_since(coll(1), 0, u64::MAX).len(), 2);
        assert_eq!(s.changes_since(coll(1), 1, u64::MAX).len(), 1);
        assert_eq!(s.arrivals(coll(2), u64::MAX).len(), 1);
        assert_eq!(s.arrivals(coll(1), u64::MAX), vec![ItemKey::New(1)]);
        let Some(Content::Blob(b)) = &s.items[&ItemKey::New(1)].content else {
            panic!("blob lost")
        };
        assert_eq!(&s.blob(b).unwrap()[..], b"hello");
        std::fs::remove_dir_all(dir).ok();
    }
}
