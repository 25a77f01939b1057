//! Unit tests of the format pieces.

use crate::crc::{crc, signature};
use crate::ltp::{Heap, TcLayout, build_bth};
use crate::ndb::{AMAP_FIRST, HeaderFields, Ndb, build_header};
use std::io::Cursor;

#[test]
fn crc_matches_the_crc32_check_value() {
    // MS-PST's CRC is CRC-32 (0xEDB88320, reflected) without the initial and
    // final inversion; with them added back it gives the standard check value.
    let with_inversion = !crc(!0, b"123456789");
    assert_eq!(with_inversion, 0xCBF4_3926);
    assert_eq!(crc(0, b""), 0);
    // Continuing a CRC equals computing it at once.
    assert_eq!(crc(crc(0, b"1234"), b"56789"), crc(0, b"123456789"));
}

#[test]
fn signature_follows_compute_sig() {
    // ComputeSig: ib ^= bid; return (WORD)(ib >> 16) ^ (WORD)ib.
    let ib = 0x0001_2340u64;
    let bid = 0x0000_0024u64;
    let x = (ib ^ bid) as u32;
    assert_eq!(signature(ib, bid), ((x >> 16) ^ (x & 0xFFFF)) as u16);
    assert_eq!(signature(0x4800, 0x4800), 0);
}

#[test]
fn header_has_magic_version_and_valid_crcs() {
    let h = build_header(&HeaderFields {
        next_bid: 0x100,
        next_page_bid: 0x100,
        unique: 1,
        rgnid: [0x400; 32],
        eof: 0x8000,
        amap_last: AMAP_FIRST,
        amap_free: 0,
        nbt_root: (4, 0x4800),
        bbt_root: (8, 0x4a00),
    });
    assert_eq!(h.len(), 564);
    assert_eq!(&h[0..4], b"!BDN");
    assert_eq!(&h[8..10], b"SM");
    assert_eq!(u16::from_le_bytes([h[10], h[11]]), 23);
    let partial = u32::from_le_bytes(h[4..8].try_into().unwrap());
    assert_eq!(partial, crc(0, &h[8..479]));
    let full = u32::from_le_bytes(h[524..528].try_into().unwrap());
    assert_eq!(full, crc(0, &h[8..524]));
    assert_eq!(h[512], 0x80);
    assert_eq!(h[513], 0, "NDB_CRYPT_NONE");
}

#[test]
fn blocks_are_64_byte_aligned_with_trailer() {
    let mut ndb = Ndb::new(Cursor::new(Vec::new()));
    let bid = ndb.write_block(b"hello", false).unwrap();
    assert_eq!(bid, 4, "first data block id");
    let bid2 = ndb.write_block(&[], true).unwrap();
    assert_eq!(bid2 & 2, 2, "internal bit set");
    let (cur, eof) = ndb.finish([0x400; 32]).unwrap();
    let file = cur.into_inner();
    assert_eq!(file.len() as u64, eof);
    // The first block lands after the AMap and PMap pages of region 0.
    let b = &file[0x4800..0x4840];
    assert_eq!(&b[..5], b"hello");
    let t = &b[48..64];
    assert_eq!(u16::from_le_bytes([t[0], t[1]]), 5);
    assert_eq!(u16::from_le_bytes([t[2], t[3]]), signature(0x4800, 4));
    assert_eq!(
        u32::from_le_bytes(t[4..8].try_into().unwrap()),
        crc(0, b"hello")
    );
    assert_eq!(u64::from_le_bytes(t[8..16].try_into().unwrap()), 4);
    // AMap page: type 0x84, own offset as BID, first two pages and the blocks marked.
    let amap = &file[0x4400..0x4600];
    assert_eq!(amap[496], 0x84);
    assert_eq!(
        u64::from_le_bytes(amap[504..512].try_into().unwrap()),
        0x4400
    );
    assert_eq!(amap[0], 0xFF);
    assert_eq!(amap[1], 0xFF);
    assert_eq!(amap[2] & 0xC0, 0xC0, "both 64-byte blocks allocated");
    assert_eq!(
        u32::from_le_bytes(amap[500..504].try_into().unwrap()),
        crc(0, &amap[..496])
    );
}

#[test]
fn large_streams_use_xblocks() {
    let mut ndb = Ndb::new(Cursor::new(Vec::new()));
    let data = vec![7u8; 8176 * 3 + 10];
    let bid = ndb.write_stream(&data).unwrap();
    assert_eq!(bid & 2, 2, "an XBLOCK is an internal block");
    let (cur, _) = ndb.finish([0x400; 32]).unwrap();
    let file = cur.into_inner();
    // Four 8 KiB data blocks, then the XBLOCK.
    let x = 0x4800 + 3 * 8192 + 64; // three full blocks, the 10-byte tail, then the XBLOCK
    assert_eq!(file[x], 0x01);
    assert_eq!(file[x + 1], 1);
    assert_eq!(u16::from_le_bytes([file[x + 2], file[x + 3]]), 4);
    assert_eq!(
        u32::from_le_bytes(file[x + 4..x + 8].try_into().unwrap()),
        data.len() as u32
    );
}

#[test]
fn heap_ids_and_page_map() {
    let mut heap = Heap::new(0xBC);
    let a = heap.alloc(b"abc").unwrap();
    let b = heap.alloc(b"defg").unwrap();
    assert_eq!(a, 0x20, "first HID: block 0, index 1");
    assert_eq!(b, 0x40);
    heap.set_root(b);
    let blocks = heap.into_blocks();
    assert_eq!(blocks.len(), 1);
    let p = &blocks[0];
    assert_eq!(p[2], 0xEC);
    assert_eq!(p[3], 0xBC);
    let map = u16::from_le_bytes([p[0], p[1]]) as usize;
    assert_eq!(u16::from_le_bytes([p[map], p[map + 1]]), 2);
    let offs: Vec<u16> = (0..3)
        .map(|i| u16::from_le_bytes([p[map + 4 + 2 * i], p[map + 5 + 2 * i]]))
        .collect();
    assert_eq!(offs, vec![12, 15, 19]);
}

#[test]
fn bth_splits_into_index_levels() {
    let mut heap = Heap::new(0x7C);
    let records: Vec<Vec<u8>> = (0u32..2000)
        .map(|i| [i.to_le_bytes(), i.to_le_bytes()].concat())
        .collect();
    let hdr = build_bth(&mut heap, 4, 4, &records).unwrap();
    heap.set_root(hdr);
    let blocks = heap.into_blocks();
    assert!(blocks.len() >= 2, "2000 rows need more than one heap block");
}

#[test]
fn tc_layout_puts_row_id_first_then_groups_by_size() {
    // Subject (string: 4-byte HNID), delivery time (8 bytes), flags (4), to-me (1).
    let l = TcLayout::new(&[0x0037_001F, 0x0E06_0040, 0x0E07_0003, 0x0057_000B]);
    let col = |tag: u32| *l.cols.iter().find(|c| c.0 == tag).unwrap();
    assert_eq!(
        col(0x67F2_0003),
        (0x67F2_0003, 0, 4, 0),
        "PidTagLtpRowId at 0, bit 0"
    );
    assert_eq!(
        col(0x67F3_0003),
        (0x67F3_0003, 4, 4, 1),
        "PidTagLtpRowVer at 4, bit 1"
    );
    assert_eq!(col(0x0E06_0040).1, 8, "8-byte values follow");
    assert_eq!(col(0x0E06_0040).2, 8);
    assert_eq!(col(0x0037_001F).2, 4);
    assert_eq!(
        col(0x0057_000B).1,
        24,
        "1-byte values after the 4-byte group"
    );
    // 8+4+4 ends at 24; no 2-byte columns; the boolean ends at 25; 6 columns = 1 CEB byte.
    assert_eq!(l.rgib, [24, 24, 25, 26]);
    assert_eq!(l.row_size, 26);
    // Descriptors are sorted by tag.
    assert!(l.cols.windows(2).all(|w| w[0].0 < w[1].0));
}

/// The first 256 bytes of the sample Unicode header in MS-PST section 3.2.
const SPEC_SAMPLE_HEADER: &str = "\
21 42 44 4E 0E A9 9A 37 53 4D 17 00 13 00 01 01 5C 07 00 00 D0 7B 99 0B 04 00 00 00 01 00 00 00 \
54 02 00 00 00 00 00 00 45 00 00 00 00 04 00 00 00 04 00 00 04 04 00 00 00 40 00 00 02 00 01 00 \
04 04 00 00 00 04 00 00 00 04 00 00 00 80 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 \
04 04 00 00 04 04 00 00 04 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 \
00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 00 04 00 00 \
00 04 00 00 00 04 00 00 0F 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 24 9F 00 00 00 00 00 \
00 44 9B 00 00 00 00 00 40 F2 12 00 00 00 00 00 00 00 00 00 00 00 00 00 4B 02 00 00 00 00 00 00 \
00 52 90 00 00 00 00 00 53 02 00 00 00 00 00 00 00 0A 90 00 00 00 00 00 02 00 00 00 00 00 00 00";

#[test]
fn header_field_offsets_match_the_spec_sample() {
    let s: Vec<u8> = SPEC_SAMPLE_HEADER
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    assert_eq!(s.len(), 256);
    // Write a header with the sample's values and compare field by field.
    let u32_at = |o: usize| u32::from_le_bytes(s[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(s[o..o + 8].try_into().unwrap());
    let mut rgnid = [0u32; 32];
    for (i, n) in rgnid.iter_mut().enumerate() {
        *n = u32_at(44 + 4 * i);
    }
    let ours = build_header(&HeaderFields {
        next_bid: 0,
        next_page_bid: u64_at(32),
        unique: u32_at(40),
        rgnid,
        eof: u64_at(184),
        amap_last: u64_at(192),
        amap_free: u64_at(200),
        nbt_root: (u64_at(216), u64_at(224)),
        bbt_root: (u64_at(232), u64_at(240)),
    });
    // Magic, client magic, versions and platform bytes.
    assert_eq!(ours[0..4], s[0..4]);
    assert_eq!(ours[8..16], s[8..16]);
    // bidNextP .. end of ROOT (fAMapValid = VALID_AMAP2), except the unused fields.
    assert_eq!(ours[32..172], s[32..172]);
    assert_eq!(ours[180..252], s[180..252]);
    // The sample's last AMap page sits where our layout puts AMap pages.
    let amap_last = u64_at(192);
    assert_eq!((amap_last - AMAP_FIRST) % crate::ndb::AMAP_SPAN, 0);
}

#[test]
fn per_item_index_entries_stay_small() {
    assert_eq!(std::mem::size_of::<crate::ndb::NbtEntry>(), 24);
    assert_eq!(std::mem::size_of::<crate::ndb::BbtEntry>(), 24);
    assert_eq!(crate::messaging::CONTENTS_ROW_SIZE, 56);
}
