//! The lists, tables and properties (LTP) layer: heap-on-node (HN), BTree-on-heap
//! (BTH), property contexts (PC) and table contexts (TC).

use std::io::{Seek, Write};

use crate::Error;
use crate::ndb::{MAX_BLOCK_DATA, Ndb, SubEntry};

/// Largest single heap allocation.
pub const MAX_HEAP_ALLOC: usize = 3580;

pub const SIG_BTH: u8 = 0xB5;
pub const SIG_TC: u8 = 0x7C;
pub const SIG_PC: u8 = 0xBC;

/// A property value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    I32(i32),
    Bool(bool),
    /// FILETIME: 100 ns intervals since 1601-01-01.
    Time(i64),
    Str(String),
    Bin(Vec<u8>),
    /// A binary value already written as the subnode with this NID.
    BinInSubnode(u32),
}

impl Val {
    pub fn ptype(&self) -> u16 {
        match self {
            Val::I32(_) => 0x0003,
            Val::Bool(_) => 0x000B,
            Val::Time(_) => 0x0040,
            Val::Str(_) => 0x001F,
            Val::Bin(_) | Val::BinInSubnode(_) => 0x0102,
        }
    }

    /// An empty string or binary, which is left out rather than stored.
    pub fn is_empty(&self) -> bool {
        match self {
            Val::Str(s) => s.is_empty(),
            Val::Bin(b) => b.is_empty(),
            _ => false,
        }
    }

    /// Bytes of a value stored out of line (heap or subnode).
    fn bytes(&self) -> Vec<u8> {
        match self {
            Val::I32(v) => v.to_le_bytes().to_vec(),
            Val::Bool(v) => vec![u8::from(*v)],
            Val::Time(v) => v.to_le_bytes().to_vec(),
            Val::Str(s) => utf16(s),
            Val::Bin(b) => b.clone(),
            Val::BinInSubnode(_) => Vec::new(),
        }
    }
}

pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Size in a TC row of a column of the given property type.
pub fn column_size(ptype: u16) -> u8 {
    match ptype {
        0x0002 => 2,
        0x000B => 1,
        0x0014 | 0x0040 | 0x0005 | 0x0006 => 8,
        _ => 4,
    }
}

/// A heap-on-node being assembled in memory (one item's worth at a time).
pub struct Heap {
    client_sig: u8,
    root: u32,
    pages: Vec<HeapPage>,
}

struct HeapPage {
    header_len: usize,
    body: Vec<u8>,
    /// Offsets (from the page start) of each allocation's start.
    starts: Vec<u16>,
}

impl HeapPage {
    fn new(index: usize) -> Self {
        let header_len = if index == 0 {
            12
        } else if index >= 8 && (index - 8) % 128 == 0 {
            66
        } else {
            2
        };
        HeapPage {
            header_len,
            body: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Page size once serialized with `extra` more allocations of `add` bytes.
    fn size_with(&self, add: usize, extra: usize) -> usize {
        let data_end = self.header_len + self.body.len() + add;
        let map = data_end.div_ceil(2) * 2;
        map + 4 + (self.starts.len() + extra + 1) * 2
    }
}

impl Heap {
    pub fn new(client_sig: u8) -> Self {
        Heap {
            client_sig,
            root: 0,
            pages: vec![HeapPage::new(0)],
        }
    }

    /// Allocates `data` and returns its HID.
    pub fn alloc(&mut self, data: &[u8]) -> Result<u32, Error> {
        if data.len() > MAX_HEAP_ALLOC {
            return Err(Error::Internal("heap allocation over 3580 bytes".into()));
        }
        let fits = self
            .pages
            .last()
            .is_some_and(|p| p.size_with(data.len(), 1) <= MAX_BLOCK_DATA && p.starts.len() < 2000);
        if !fits {
            let idx = self.pages.len();
            if idx >= 0xFFFF {
                return Err(Error::TooLarge("heap over 65535 blocks"));
            }
            self.pages.push(HeapPage::new(idx));
        }
        let page_index = self.pages.len() - 1;
        let p = self.pages.last_mut().expect("page");
        let start = (p.header_len + p.body.len()) as u16;
        p.starts.push(start);
        p.body.extend_from_slice(data);
        let hid_index = p.starts.len() as u32;
        Ok(((page_index as u32) << 16) | (hid_index << 5))
    }

    pub fn set_root(&mut self, hid: u32) {
        self.root = hid;
    }

    /// Serializes the heap pages, one block each.
    pub fn into_blocks(self) -> Vec<Vec<u8>> {
        let sizes: Vec<usize> = self.pages.iter().map(|p| p.size_with(0, 0)).collect();
        let fill = |i: usize| -> u8 { fill_level(MAX_BLOCK_DATA.saturating_sub(sizes[i])) };
        let n = self.pages.len();
        let mut out = Vec::with_capacity(n);
        for (i, p) in self.pages.iter().enumerate() {
            let data_end = p.header_len + p.body.len();
            let map_at = data_end.div_ceil(2) * 2;
            let mut b = vec![0u8; map_at];
            b[..2].copy_from_slice(&(map_at as u16).to_le_bytes());
            if i == 0 {
                b[2] = 0xEC;
                b[3] = self.client_sig;
                b[4..8].copy_from_slice(&self.root.to_le_bytes());
                for j in 0..8.min(n) {
                    b[8 + j / 2] |= fill(j) << ((j % 2) * 4);
                }
            } else if p.header_len == 66 {
                for j in 0..128 {
                    if i + j < n {
                        b[2 + j / 2] |= fill(i + j) << ((j % 2) * 4);
                    }
                }
            }
            b[p.header_len..data_end].copy_from_slice(&p.body);
            b.extend_from_slice(&(p.starts.len() as u16).to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes());
            for s in &p.starts {
                b.extend_from_slice(&s.to_le_bytes());
            }
            b.extend_from_slice(&(data_end as u16).to_le_bytes());
            out.push(b);
        }
        out
    }
}

/// FILL_LEVEL_* value for a heap block with `free` bytes left.
fn fill_level(free: usize) -> u8 {
    match free {
        f if f >= 3584 => 0x0,
        f if f >= 2560 => 0x1,
        f if f >= 2048 => 0x2,
        f if f >= 1792 => 0x3,
        f if f >= 1536 => 0x4,
        f if f >= 1280 => 0x5,
        f if f >= 1024 => 0x6,
        f if f >= 768 => 0x7,
        f if f >= 512 => 0x8,
        f if f >= 256 => 0x9,
        f if f >= 128 => 0xA,
        f if f >= 64 => 0xB,
        f if f >= 32 => 0xC,
        f if f >= 16 => 0xD,
        f if f >= 8 => 0xE,
        _ => 0xF,
    }
}

/// Builds a BTH over sorted `records` (key bytes followed by data bytes) and
/// returns the HID of its header.
pub fn build_bth(heap: &mut Heap, key: u8, data: u8, records: &[Vec<u8>]) -> Result<u32, Error> {
    let mut root = 0u32;
    let mut levels = 0u8;
    if !records.is_empty() {
        let per = MAX_HEAP_ALLOC / (key as usize + data as usize);
        let mut level: Vec<(Vec<u8>, u32)> = Vec::new();
        for group in records.chunks(per) {
            let mut buf = Vec::with_capacity(group.len() * group[0].len());
            for r in group {
                buf.extend_from_slice(r);
            }
            level.push((group[0][..key as usize].to_vec(), heap.alloc(&buf)?));
        }
        let per = MAX_HEAP_ALLOC / (key as usize + 4);
        while level.len() > 1 {
            levels += 1;
            let mut next = Vec::new();
            for group in level.chunks(per) {
                let mut buf = Vec::new();
                for (k, hid) in group {
                    buf.extend_from_slice(k);
                    buf.extend_from_slice(&hid.to_le_bytes());
                }
                next.push((group[0].0.clone(), heap.alloc(&buf)?));
            }
            level = next;
        }
        root = level[0].1;
    }
    let mut h = vec![SIG_BTH, key, data, levels];
    h.extend_from_slice(&root.to_le_bytes());
    heap.alloc(&h)
}

/// Allocates subnode ids for large values inside one node.
pub struct Subnodes {
    pub entries: Vec<SubEntry>,
    next_index: u32,
}

impl Default for Subnodes {
    fn default() -> Self {
        Subnodes {
            entries: Vec::new(),
            next_index: 0x400,
        }
    }
}

impl Subnodes {
    /// A list for a nested subnode (an attachment) that continues this one's
    /// numbering: libpst flattens nested subnode trees into one list, so the
    /// NIDs stay unique across the whole message.
    pub fn nested(&self) -> Self {
        Subnodes {
            entries: Vec::new(),
            next_index: self.next_index,
        }
    }

    /// Takes over the numbering of a nested list once it is written.
    pub fn continue_after(&mut self, nested: &Subnodes) {
        self.next_index = self.next_index.max(nested.next_index);
    }

    /// Next NID for a large value or row matrix subnode. Its type is
    /// NID_TYPE_LTP (0x1F): readers such as libpst tell subnode NIDs from
    /// heap ids by the low nibble 0xF.
    pub fn next_internal(&mut self) -> u32 {
        let nid = (self.next_index << 5) | 0x1F;
        self.next_index += 1;
        nid
    }

    pub fn push(&mut self, nid: u32, bid_data: u64, bid_sub: u64) {
        self.entries.push(SubEntry {
            nid,
            bid_data,
            bid_sub,
        });
    }
}

/// Stores a variable-size value in the heap or, when large, in a subnode; returns the HNID.
fn store_var<W: Write + Seek>(
    ndb: &mut Ndb<W>,
    heap: &mut Heap,
    subs: &mut Subnodes,
    bytes: &[u8],
) -> Result<u32, Error> {
    if bytes.len() <= MAX_HEAP_ALLOC {
        heap.alloc(bytes)
    } else {
        let bid = ndb.write_stream(bytes)?;
        let nid = subs.next_internal();
        subs.push(nid, bid, 0);
        Ok(nid)
    }
}

/// Writes a property context; large values become subnodes in `subs`.
/// Returns the BID of the node's data.
pub fn write_pc<W: Write + Seek>(
    ndb: &mut Ndb<W>,
    props: &mut [(u16, Val)],
    subs: &mut Subnodes,
) -> Result<u64, Error> {
    props.sort_by_key(|p| p.0);
    let mut heap = Heap::new(SIG_PC);
    let mut records = Vec::with_capacity(props.len());
    for (id, v) in props.iter() {
        // A zero-length heap item reads as a freed slot, so empty values are left out.
        if v.is_empty() {
            continue;
        }
        let inline: Option<u32> = match v {
            Val::I32(x) => Some(*x as u32),
            Val::Bool(x) => Some(u32::from(*x)),
            Val::BinInSubnode(nid) => Some(*nid),
            _ => None,
        };
        let hnid = match inline {
            Some(x) => x,
            None => store_var(ndb, &mut heap, subs, &v.bytes())?,
        };
        let mut r = Vec::with_capacity(8);
        r.extend_from_slice(&id.to_le_bytes());
        r.extend_from_slice(&v.ptype().to_le_bytes());
        r.extend_from_slice(&hnid.to_le_bytes());
        records.push(r);
    }
    let bth = build_bth(&mut heap, 2, 6, &records)?;
    heap.set_root(bth);
    let blocks = heap.into_blocks();
    let chunks: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    ndb.write_chunks(&chunks)
}

/// Column layout of a table context.
pub struct TcLayout {
    /// (tag, ib, cb, ibit) in tag order.
    pub(crate) cols: Vec<(u32, u16, u8, u8)>,
    /// Row size (end of the cell existence bitmap).
    pub(crate) row_size: usize,
    /// TCI_4b, TCI_2b, TCI_1b, TCI_bm: ends of the 8/4-byte, 2-byte and
    /// 1-byte groups and of the cell existence bitmap.
    pub(crate) rgib: [u16; 4],
}

pub const TAG_ROW_ID: u32 = 0x67F2_0003;
pub const TAG_ROW_VER: u32 = 0x67F3_0003;

impl TcLayout {
    /// `tags` are property tags (id << 16 | type); row id and version are added.
    pub fn new(tags: &[u32]) -> Self {
        let mut all: Vec<u32> = vec![TAG_ROW_ID, TAG_ROW_VER];
        for &t in tags {
            if !all.contains(&t) {
                all.push(t);
            }
        }
        // Row id first, row version second, then 8-, 4-, 2- and 1-byte columns.
        let mut order: Vec<u32> = all[2..].to_vec();
        order.sort_by_key(|t| (std::cmp::Reverse(column_size(*t as u16)), *t));
        let mut placed = vec![(TAG_ROW_ID, 0u16, 4u8), (TAG_ROW_VER, 4u16, 4u8)];
        let mut ib = 8u16;
        let mut rgib = [0u16; 4];
        let mut last_size = 4;
        for t in order {
            let sz = column_size(t as u16);
            if sz < 4 && last_size >= 4 {
                rgib[0] = ib;
            }
            if sz < 2 && last_size >= 2 {
                rgib[1] = ib;
            }
            last_size = sz;
            placed.push((t, ib, sz));
            ib += u16::from(sz);
        }
        if last_size >= 4 {
            rgib[0] = ib;
        }
        if last_size >= 2 {
            rgib[1] = ib;
        }
        rgib[2] = ib;
        let ceb = placed.len().div_ceil(8) as u16;
        rgib[3] = ib + ceb;
        let mut cols: Vec<(u32, u16, u8, u8)> = placed
            .iter()
            .enumerate()
            .map(|(i, (t, ib, cb))| (*t, *ib, *cb, i as u8))
            .collect();
        cols.sort_by_key(|c| c.0);
        TcLayout {
            cols,
            row_size: rgib[3] as usize,
            rgib,
        }
    }
}

/// One row: its id and the values of some columns (by tag).
pub struct Row {
    pub id: u32,
    pub values: Vec<(u32, Val)>,
}

/// Writes a table context with `rows`; large values and big row matrices go to `subs`.
pub fn write_tc<W: Write + Seek>(
    ndb: &mut Ndb<W>,
    layout: &TcLayout,
    rows: &[Row],
    subs: &mut Subnodes,
) -> Result<u64, Error> {
    let mut heap = Heap::new(SIG_TC);
    let mut matrix = Vec::with_capacity(rows.len() * layout.row_size);
    for (index, row) in rows.iter().enumerate() {
        let mut r = vec![0u8; layout.row_size];
        let ceb_at = layout.rgib[2] as usize;
        let set = |ibit: u8, r: &mut Vec<u8>| {
            r[ceb_at + ibit as usize / 8] |= 0x80 >> (ibit % 8);
        };
        for &(tag, ib, _, ibit) in &layout.cols {
            let ib = ib as usize;
            if tag == TAG_ROW_ID {
                r[ib..ib + 4].copy_from_slice(&row.id.to_le_bytes());
                set(ibit, &mut r);
                continue;
            }
            if tag == TAG_ROW_VER {
                r[ib..ib + 4].copy_from_slice(&(index as u32 + 1).to_le_bytes());
                set(ibit, &mut r);
                continue;
            }
            let Some((_, v)) = row.values.iter().find(|(t, _)| *t == tag) else {
                continue;
            };
            if v.is_empty() {
                continue;
            }
            match v {
                Val::I32(x) => r[ib..ib + 4].copy_from_slice(&x.to_le_bytes()),
                Val::Bool(x) => r[ib] = u8::from(*x),
                Val::Time(x) => r[ib..ib + 8].copy_from_slice(&x.to_le_bytes()),
                Val::BinInSubnode(nid) => r[ib..ib + 4].copy_from_slice(&nid.to_le_bytes()),
                Val::Str(_) | Val::Bin(_) => {
                    let hnid = store_var(ndb, &mut heap, subs, &v.bytes())?;
                    r[ib..ib + 4].copy_from_slice(&hnid.to_le_bytes());
                }
            }
            set(ibit, &mut r);
        }
        matrix.extend_from_slice(&r);
    }
    let hnid_rows = if rows.is_empty() {
        0
    } else if matrix.len() <= MAX_HEAP_ALLOC {
        heap.alloc(&matrix)?
    } else {
        // Rows never straddle blocks of the row matrix.
        let per_block = MAX_BLOCK_DATA / layout.row_size;
        let chunks: Vec<&[u8]> = matrix.chunks(per_block * layout.row_size).collect();
        let bid = ndb.write_chunks(&chunks)?;
        let nid = subs.next_internal();
        subs.push(nid, bid, 0);
        nid
    };
    drop(matrix);
    let mut index: Vec<Vec<u8>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut e = Vec::with_capacity(8);
            e.extend_from_slice(&r.id.to_le_bytes());
            e.extend_from_slice(&(i as u32).to_le_bytes());
            e
        })
        .collect();
    index.sort_by_key(|e| u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
    let hid_index = build_bth(&mut heap, 4, 4, &index)?;
    let mut info = vec![SIG_TC, layout.cols.len() as u8];
    for v in layout.rgib {
        info.extend_from_slice(&v.to_le_bytes());
    }
    info.extend_from_slice(&hid_index.to_le_bytes());
    info.extend_from_slice(&hnid_rows.to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes()); // hidIndex (deprecated)
    for &(tag, ib, cb, ibit) in &layout.cols {
        info.extend_from_slice(&tag.to_le_bytes());
        info.extend_from_slice(&ib.to_le_bytes());
        info.push(cb);
        info.push(ibit);
    }
    let root = heap.alloc(&info)?;
    heap.set_root(root);
    let blocks = heap.into_blocks();
    let chunks: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    ndb.write_chunks(&chunks)
}
