//! An independent walk over the file's NDB structures: header CRCs, every
//! B-tree page and block trailer (type, signature, CRC, id), no two
//! allocations overlapping, and the allocation maps agreeing exactly with
//! what the B-trees reference (the header claims the maps are valid).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;

use cairn_pst::{Attachment, FolderKind, PstWriter};

use crate::fixture::{message, temp_dir, write_sample};

fn crc(data: &[u8]) -> u32 {
    // Bitwise form of the MS-PST CRC (reflected 0xEDB88320, zero seed, no final xor).
    let mut c = 0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    c
}

fn sig(ib: u64, bid: u64) -> u16 {
    let x = (ib ^ bid) as u32;
    ((x >> 16) ^ (x & 0xFFFF)) as u16
}

fn u16_at(f: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(f[o..o + 2].try_into().unwrap())
}
fn u32_at(f: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(f[o..o + 4].try_into().unwrap())
}
fn u64_at(f: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(f[o..o + 8].try_into().unwrap())
}

struct Walk<'a> {
    f: &'a [u8],
    /// start -> end of every allocation found
    used: BTreeMap<u64, u64>,
    blocks: BTreeMap<u64, (u64, u16)>,
    nodes: Vec<(u64, u64, u64)>,
}

impl Walk<'_> {
    fn claim(&mut self, start: u64, len: u64) {
        assert!(
            self.used.insert(start, start + len).is_none(),
            "{start:#x} used twice"
        );
    }

    fn page(&mut self, bid: u64, ib: u64, ptype: u8) {
        let p = &self.f[ib as usize..ib as usize + 512];
        assert_eq!((p[496], p[497]), (ptype, ptype), "page type at {ib:#x}");
        assert_eq!(u16_at(p, 498), sig(ib, bid), "page signature at {ib:#x}");
        assert_eq!(u32_at(p, 500), crc(&p[..496]), "page CRC at {ib:#x}");
        assert_eq!(u64_at(p, 504), bid, "page id at {ib:#x}");
        assert_eq!(ib % 512, 0);
        self.claim(ib, 512);
        let (n, level, size) = (p[488] as usize, p[491], p[490] as usize);
        assert!(n >= 1 && n * size <= 488);
        for i in 0..n {
            let e = &p[i * size..(i + 1) * size];
            if level > 0 {
                self.page(u64_at(e, 8), u64_at(e, 16), ptype);
            } else if ptype == 0x80 {
                self.blocks
                    .insert(u64_at(e, 0), (u64_at(e, 8), u16_at(e, 16)));
            } else {
                self.nodes.push((u64_at(e, 0), u64_at(e, 8), u64_at(e, 16)));
            }
        }
    }
}

pub fn check_file(path: &std::path::Path) {
    let f = std::fs::read(path).unwrap();
    assert_eq!(&f[0..4], b"!BDN");
    assert_eq!(u32_at(&f, 4), crc(&f[8..479]));
    assert_eq!(u32_at(&f, 524), crc(&f[8..524]));
    let root = 180;
    let eof = u64_at(&f, root + 4);
    let amap_last = u64_at(&f, root + 12);
    let amap_free = u64_at(&f, root + 20);
    assert_eq!(eof, f.len() as u64);
    assert_eq!(f[root + 68], 0x02, "fAMapValid = VALID_AMAP2");
    let mut w = Walk {
        f: &f,
        used: BTreeMap::new(),
        blocks: BTreeMap::new(),
        nodes: Vec::new(),
    };
    w.page(u64_at(&f, root + 36), u64_at(&f, root + 44), 0x81);
    w.page(u64_at(&f, root + 52), u64_at(&f, root + 60), 0x80);
    let next_bid = u64_at(&f, 516);
    let blocks = std::mem::take(&mut w.blocks);
    for (&bid, &(ib, cb)) in &blocks {
        assert!(bid < next_bid);
        let size = (u64::from(cb) + 16).div_ceil(64) * 64;
        let b = &f[ib as usize..(ib + size) as usize];
        let t = size as usize - 16;
        assert_eq!(u16_at(b, t), cb, "block {bid:#x} size");
        assert_eq!(u16_at(b, t + 2), sig(ib, bid), "block {bid:#x} signature");
        assert_eq!(
            u32_at(b, t + 4),
            crc(&b[..cb as usize]),
            "block {bid:#x} CRC"
        );
        assert_eq!(u64_at(b, t + 8), bid, "block {bid:#x} id");
        assert_eq!(ib % 64, 0);
        w.claim(ib, size);
    }
    for &(nid, data, sub) in &w.nodes {
        assert!(blocks.contains_key(&data), "node {nid:#x} data block");
        assert!(
            sub == 0 || blocks.contains_key(&sub),
            "node {nid:#x} subnode block"
        );
    }
    // Map pages at the start of each 248 KiB region.
    let span = 496 * 8 * 64u64;
    let regions = (amap_last - 0x4400) / span + 1;
    let mut free = 0u64;
    for r in 0..regions {
        let base = 0x4400 + r * span;
        let p = &f[base as usize..base as usize + 512];
        assert_eq!((p[496], p[497]), (0x84, 0x84));
        assert_eq!(u32_at(p, 500), crc(&p[..496]));
        assert_eq!(u64_at(p, 504), base);
        let mut maps = 1;
        w.claim(base, 512);
        if r % 8 == 0 {
            assert_eq!(f[(base + 512 + 496) as usize], 0x83, "PMap");
            w.claim(base + 512, 512);
            maps += 1;
        }
        for unit in 0..496 * 8u64 {
            let bit = p[(unit / 8) as usize] & (0x80 >> (unit % 8)) != 0;
            let at = base + unit * 64;
            let used = unit < maps * 8
                || w.used
                    .range(..=at)
                    .next_back()
                    .is_some_and(|(_, &end)| end > at);
            assert_eq!(bit, used, "AMap bit for {at:#x}");
            if !bit {
                free += 64;
            }
        }
    }
    assert_eq!(free, amap_free, "cbAMapFree");
    // Nothing overlaps.
    let mut last_end = 0;
    for (&s, &e) in &w.used {
        assert!(s >= last_end, "overlap at {s:#x}");
        last_end = e;
    }
    assert!(last_end <= eof);
}

#[test]
fn sample_file_structures_are_consistent() {
    let dir = temp_dir("structure");
    let file = dir.join("sample.pst");
    write_sample(&file);
    check_file(&file);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn multi_region_file_structures_are_consistent() {
    let dir = temp_dir("structure-big");
    let file = dir.join("big.pst");
    let mut w = PstWriter::new(BufWriter::new(File::create(&file).unwrap()), "Big").unwrap();
    let f = w.add_folder(w.root(), "Папка", FolderKind::Mail).unwrap();
    for i in 0..1500 {
        let mut m = message(&format!("№{i}"), i);
        if i % 100 == 0 {
            m.attachments.push(Attachment {
                filename: format!("{i}.bin"),
                mime_type: "application/octet-stream".into(),
                data: vec![i as u8; 300_000],
            });
        }
        w.add_message(f, &m).unwrap();
    }
    let stats = w.finish().unwrap();
    // More than 8 allocation regions, so a second PMap is involved.
    assert!(stats.file_bytes > 9 * 253_952, "{stats:?}");
    check_file(&file);
    std::fs::remove_dir_all(dir).ok();
}
