//! The node database (NDB) layer of MS-PST, Unicode format: blocks, data
//! trees, subnode trees, the allocation maps and the two B-trees.
//!
//! Space is handed out strictly in file order, so the allocation map page of
//! a 248 KiB region is complete as soon as the write cursor leaves the
//! region; it is written then and only one region's bitmap is kept in memory.

use std::io::{Seek, SeekFrom, Write};

use crate::Error;
use crate::crc::{crc, signature};

/// Largest payload of one block (8 KiB minus the 16-byte trailer).
pub const MAX_BLOCK_DATA: usize = 8176;
/// Size of a page (B-tree pages, allocation maps, density list).
pub const PAGE_SIZE: u64 = 512;
/// File offset of the density list page.
pub const DLIST_OFFSET: u64 = 0x4200;
/// File offset of the first allocation map page.
pub const AMAP_FIRST: u64 = 0x4400;
/// Bytes covered by one allocation map page: 496 bytes of bits, one bit per 64 bytes.
pub const AMAP_SPAN: u64 = 496 * 8 * 64;
/// Entries of the XBLOCK/XXBLOCK arrays: (8176 - 8) / 8.
pub const MAX_XBLOCK_ENTRIES: usize = 1021;
/// Entries of one SLBLOCK: (8176 - 8) / 24.
pub const MAX_SLENTRIES: usize = 340;
/// Entries of one SIBLOCK: (8176 - 8) / 16.
pub const MAX_SIENTRIES: usize = 510;

pub const PTYPE_BBT: u8 = 0x80;
pub const PTYPE_NBT: u8 = 0x81;
pub const PTYPE_FMAP: u8 = 0x82;
pub const PTYPE_PMAP: u8 = 0x83;
pub const PTYPE_AMAP: u8 = 0x84;
pub const PTYPE_FPMAP: u8 = 0x85;
pub const PTYPE_DLIST: u8 = 0x86;

/// Which map pages open the allocation region `region`: (pmap, fmap, fpmap).
fn region_maps(region: u64) -> (bool, bool, bool) {
    let pmap = region % 8 == 0;
    let fmap = region >= 128 && (region - 128) % 496 == 0;
    let fpmap = region >= 128 * 64 && (region - 128 * 64) % (496 * 64) == 0;
    (pmap, fmap, fpmap)
}

/// Pages reserved at the start of a region (AMap, then PMap, FMap, FPMap when present).
fn region_reserved_pages(region: u64) -> u64 {
    let (_, fmap, fpmap) = region_maps(region);
    if fpmap {
        4
    } else if fmap {
        3
    } else if region_maps(region).0 {
        2
    } else {
        1
    }
}

pub fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// One BBT leaf entry kept until the B-tree is written.
#[derive(Clone, Copy, Debug)]
pub struct BbtEntry {
    pub bid: u64,
    pub ib: u64,
    pub cb: u16,
}

/// One NBT leaf entry kept until the B-tree is written.
#[derive(Clone, Copy, Debug)]
pub struct NbtEntry {
    pub nid: u32,
    pub bid_data: u64,
    pub bid_sub: u64,
    pub parent: u32,
}

/// One entry of a subnode tree (SLENTRY).
#[derive(Clone, Copy, Debug)]
pub struct SubEntry {
    pub nid: u32,
    pub bid_data: u64,
    pub bid_sub: u64,
}

/// Writes blocks and pages, tracks allocation, and at the end writes the B-trees.
pub struct Ndb<W: Write + Seek> {
    out: W,
    /// Where the file's write position currently is (to avoid needless seeks).
    file_pos: u64,
    /// Next free byte for allocation.
    cursor: u64,
    /// Next BID index (BID = index << 2, bit 1 set for internal blocks).
    next_bid_index: u64,
    bbt: Vec<BbtEntry>,
    nbt: Vec<NbtEntry>,
    /// Current allocation region and its bitmap.
    region: u64,
    bits: [u8; 496],
    /// Free bytes in allocation regions already closed.
    free_closed: u64,
    /// Bytes of data written into blocks (payload, for statistics).
    pub payload_bytes: u64,
}

impl<W: Write + Seek> Ndb<W> {
    pub fn new(out: W) -> Self {
        let mut n = Ndb {
            out,
            file_pos: u64::MAX,
            cursor: AMAP_FIRST,
            next_bid_index: 1,
            bbt: Vec::new(),
            nbt: Vec::new(),
            region: 0,
            bits: [0; 496],
            free_closed: 0,
            payload_bytes: 0,
        };
        n.open_region(0);
        n
    }

    fn open_region(&mut self, region: u64) {
        self.region = region;
        self.bits = [0; 496];
        for b in self
            .bits
            .iter_mut()
            .take(region_reserved_pages(region) as usize)
        {
            *b = 0xFF;
        }
    }

    fn write_at(&mut self, ib: u64, data: &[u8]) -> Result<(), Error> {
        if self.file_pos != ib {
            self.out.seek(SeekFrom::Start(ib))?;
        }
        self.out.write_all(data)?;
        self.file_pos = ib + data.len() as u64;
        Ok(())
    }

    /// Writes the map pages of the current region (AMap, plus PMap/FMap/FPMap).
    fn close_region(&mut self) -> Result<(), Error> {
        let region = self.region;
        let base = AMAP_FIRST + region * AMAP_SPAN;
        let used: u64 = self.bits.iter().map(|b| u64::from(b.count_ones())).sum();
        self.free_closed += AMAP_SPAN - used * 64;
        let bits = self.bits;
        self.write_map_page(base, PTYPE_AMAP, &bits)?;
        let (pmap, fmap, fpmap) = region_maps(region);
        // PMap, FMap and FPMap are deprecated; MS-PST asks for all bits set.
        let ones = [0xFFu8; 496];
        if pmap {
            self.write_map_page(base + PAGE_SIZE, PTYPE_PMAP, &ones)?;
        }
        if fmap {
            self.write_map_page(base + 2 * PAGE_SIZE, PTYPE_FMAP, &ones)?;
        }
        if fpmap {
            self.write_map_page(base + 3 * PAGE_SIZE, PTYPE_FPMAP, &ones)?;
        }
        Ok(())
    }

    fn write_map_page(&mut self, ib: u64, ptype: u8, bits: &[u8; 496]) -> Result<(), Error> {
        let mut page = [0u8; 512];
        page[..496].copy_from_slice(bits);
        // Map pages carry signature 0 and their own file offset as BID.
        page_trailer(&mut page, ptype, 0, ib);
        self.write_at(ib, &page)
    }

    /// Reserves `size` bytes aligned to `align`, never straddling map pages.
    fn alloc(&mut self, size: u64, align: u64) -> Result<u64, Error> {
        loop {
            let start = align_up(self.cursor, align);
            let region = (start - AMAP_FIRST) / AMAP_SPAN;
            let region_start = AMAP_FIRST + region * AMAP_SPAN;
            if region != self.region {
                self.close_region()?;
                // Regions skipped entirely cannot happen: allocations are at most 8 KiB.
                self.open_region(region);
            }
            let data_start = region_start + region_reserved_pages(region) * PAGE_SIZE;
            if start < data_start {
                self.cursor = data_start;
                continue;
            }
            if start + size > region_start + AMAP_SPAN {
                self.cursor = region_start + AMAP_SPAN;
                continue;
            }
            let first = (start - region_start) / 64;
            let last = (start + size - region_start).div_ceil(64);
            for slot in first..last {
                self.bits[(slot / 8) as usize] |= 0x80 >> (slot % 8);
            }
            self.cursor = start + size;
            return Ok(start);
        }
    }

    fn next_bid(&mut self, internal: bool) -> u64 {
        let bid = (self.next_bid_index << 2) | if internal { 2 } else { 0 };
        self.next_bid_index += 1;
        bid
    }

    /// Writes one block (data or internal) and records it in the BBT.
    pub fn write_block(&mut self, data: &[u8], internal: bool) -> Result<u64, Error> {
        debug_assert!(data.len() <= MAX_BLOCK_DATA);
        let bid = self.next_bid(internal);
        let size = align_up(data.len() as u64 + 16, 64);
        let ib = self.alloc(size, 64)?;
        let mut buf = vec![0u8; size as usize];
        buf[..data.len()].copy_from_slice(data);
        let t = size as usize - 16;
        buf[t..t + 2].copy_from_slice(&(data.len() as u16).to_le_bytes());
        buf[t + 2..t + 4].copy_from_slice(&signature(ib, bid).to_le_bytes());
        buf[t + 4..t + 8].copy_from_slice(&crc(0, data).to_le_bytes());
        buf[t + 8..t + 16].copy_from_slice(&bid.to_le_bytes());
        self.write_at(ib, &buf)?;
        self.bbt.push(BbtEntry {
            bid,
            ib,
            cb: data.len() as u16,
        });
        if !internal {
            self.payload_bytes += data.len() as u64;
        }
        Ok(bid)
    }

    /// Writes a byte stream as a data tree (one block, XBLOCK or XXBLOCK).
    pub fn write_stream(&mut self, data: &[u8]) -> Result<u64, Error> {
        if data.len() <= MAX_BLOCK_DATA {
            return self.write_block(data, false);
        }
        let chunks: Vec<&[u8]> = data.chunks(MAX_BLOCK_DATA).collect();
        self.write_chunks(&chunks)
    }

    /// Writes the given chunks (each at most one block) as one data tree.
    pub fn write_chunks(&mut self, chunks: &[&[u8]]) -> Result<u64, Error> {
        if chunks.len() == 1 {
            return self.write_block(chunks[0], false);
        }
        let mut leaves = Vec::with_capacity(chunks.len());
        for c in chunks {
            leaves.push((self.write_block(c, false)?, c.len() as u64));
        }
        self.write_xtree(leaves)
    }

    /// Builds XBLOCKs (and an XXBLOCK when needed) over already written data blocks.
    pub fn write_xtree(&mut self, leaves: Vec<(u64, u64)>) -> Result<u64, Error> {
        if leaves.len() == 1 {
            return Ok(leaves[0].0);
        }
        let mut xblocks = Vec::new();
        for group in leaves.chunks(MAX_XBLOCK_ENTRIES) {
            let total: u64 = group.iter().map(|l| l.1).sum();
            let bid = self.write_xblock(1, group, total)?;
            xblocks.push((bid, total));
        }
        if xblocks.len() == 1 {
            return Ok(xblocks[0].0);
        }
        if xblocks.len() > MAX_XBLOCK_ENTRIES {
            return Err(Error::TooLarge("data tree over XXBLOCK capacity"));
        }
        let total: u64 = xblocks.iter().map(|l| l.1).sum();
        self.write_xblock(2, &xblocks, total)
    }

    fn write_xblock(
        &mut self,
        level: u8,
        entries: &[(u64, u64)],
        total: u64,
    ) -> Result<u64, Error> {
        let total = u32::try_from(total).map_err(|_| Error::TooLarge("stream over 4 GiB"))?;
        let mut b = Vec::with_capacity(8 + entries.len() * 8);
        b.push(0x01);
        b.push(level);
        b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        for e in entries {
            b.extend_from_slice(&e.0.to_le_bytes());
        }
        self.write_block(&b, true)
    }

    /// Writes a subnode tree (SLBLOCKs, with an SIBLOCK above when needed).
    /// Returns 0 when there are no subnodes.
    pub fn write_subnodes(&mut self, mut entries: Vec<SubEntry>) -> Result<u64, Error> {
        if entries.is_empty() {
            return Ok(0);
        }
        entries.sort_by_key(|e| e.nid);
        let mut leaves = Vec::new();
        for group in entries.chunks(MAX_SLENTRIES) {
            let mut b = Vec::with_capacity(8 + group.len() * 24);
            b.extend_from_slice(&[0x02, 0x00]);
            b.extend_from_slice(&(group.len() as u16).to_le_bytes());
            b.extend_from_slice(&[0; 4]);
            for e in group {
                b.extend_from_slice(&u64::from(e.nid).to_le_bytes());
                b.extend_from_slice(&e.bid_data.to_le_bytes());
                b.extend_from_slice(&e.bid_sub.to_le_bytes());
            }
            leaves.push((group[0].nid, self.write_block(&b, true)?));
        }
        if leaves.len() == 1 {
            return Ok(leaves[0].1);
        }
        if leaves.len() > MAX_SIENTRIES {
            return Err(Error::TooLarge("too many subnodes in one item"));
        }
        let mut b = Vec::with_capacity(8 + leaves.len() * 16);
        b.extend_from_slice(&[0x02, 0x01]);
        b.extend_from_slice(&(leaves.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        for (nid, bid) in &leaves {
            b.extend_from_slice(&u64::from(*nid).to_le_bytes());
            b.extend_from_slice(&bid.to_le_bytes());
        }
        self.write_block(&b, true)
    }

    /// Records a top-level node in the NBT.
    pub fn add_node(&mut self, nid: u32, parent: u32, bid_data: u64, bid_sub: u64) {
        self.nbt.push(NbtEntry {
            nid,
            bid_data,
            bid_sub,
            parent,
        });
    }

    fn write_page(&mut self, body: &[u8; 496], ptype: u8) -> Result<(u64, u64), Error> {
        let bid = self.next_bid(false);
        let ib = self.alloc(PAGE_SIZE, PAGE_SIZE)?;
        let mut page = [0u8; 512];
        page[..496].copy_from_slice(body);
        page_trailer(&mut page, ptype, signature(ib, bid), bid);
        self.write_at(ib, &page)?;
        Ok((bid, ib))
    }

    /// Writes one B-tree bottom-up; returns the root page's (bid, ib).
    fn write_btree(
        &mut self,
        ptype: u8,
        leaf_entries: Vec<(u64, Vec<u8>)>,
        leaf_size: usize,
    ) -> Result<(u64, u64), Error> {
        let leaf_max = 488 / leaf_size;
        let mut level: Vec<(u64, u64, u64)> = Vec::new(); // key, bid, ib
        let empty = vec![(0u64, vec![0u8; leaf_size])];
        let leaf_entries = if leaf_entries.is_empty() {
            // Never happens for a real store; keeps the tree well formed.
            empty
        } else {
            leaf_entries
        };
        for group in leaf_entries.chunks(leaf_max) {
            let mut body = [0u8; 496];
            for (i, (_, e)) in group.iter().enumerate() {
                body[i * leaf_size..(i + 1) * leaf_size].copy_from_slice(e);
            }
            body[488] = group.len() as u8;
            body[489] = leaf_max as u8;
            body[490] = leaf_size as u8;
            body[491] = 0;
            let (bid, ib) = self.write_page(&body, ptype)?;
            level.push((group[0].0, bid, ib));
        }
        let mut depth = 0u8;
        while level.len() > 1 {
            depth += 1;
            let mut next = Vec::new();
            for group in level.chunks(20) {
                let mut body = [0u8; 496];
                for (i, (key, bid, ib)) in group.iter().enumerate() {
                    let o = i * 24;
                    body[o..o + 8].copy_from_slice(&key.to_le_bytes());
                    body[o + 8..o + 16].copy_from_slice(&bid.to_le_bytes());
                    body[o + 16..o + 24].copy_from_slice(&ib.to_le_bytes());
                }
                body[488] = group.len() as u8;
                body[489] = 20;
                body[490] = 24;
                body[491] = depth;
                let (bid, ib) = self.write_page(&body, ptype)?;
                next.push((group[0].0, bid, ib));
            }
            level = next;
        }
        Ok((level[0].1, level[0].2))
    }

    /// Writes the B-trees, closes the last allocation region and writes the
    /// density list and header. Returns the file size.
    pub fn finish(mut self, rgnid: [u32; 32]) -> Result<(W, u64), Error> {
        let mut nbt = std::mem::take(&mut self.nbt);
        nbt.sort_by_key(|e| e.nid);
        for w in nbt.windows(2) {
            if w[0].nid == w[1].nid {
                return Err(Error::Internal(format!(
                    "duplicate node id {:#x}",
                    w[0].nid
                )));
            }
        }
        let nbt_entries: Vec<(u64, Vec<u8>)> = nbt
            .iter()
            .map(|e| {
                let mut b = Vec::with_capacity(32);
                b.extend_from_slice(&u64::from(e.nid).to_le_bytes());
                b.extend_from_slice(&e.bid_data.to_le_bytes());
                b.extend_from_slice(&e.bid_sub.to_le_bytes());
                b.extend_from_slice(&e.parent.to_le_bytes());
                b.extend_from_slice(&[0; 4]);
                (u64::from(e.nid), b)
            })
            .collect();
        drop(nbt);
        let nbt_root = self.write_btree(PTYPE_NBT, nbt_entries, 32)?;
        // BIDs were handed out in increasing order, so the BBT is already sorted.
        let bbt = std::mem::take(&mut self.bbt);
        let bbt_entries: Vec<(u64, Vec<u8>)> = bbt
            .iter()
            .map(|e| {
                let mut b = Vec::with_capacity(24);
                b.extend_from_slice(&e.bid.to_le_bytes());
                b.extend_from_slice(&e.ib.to_le_bytes());
                b.extend_from_slice(&e.cb.to_le_bytes());
                b.extend_from_slice(&1u16.to_le_bytes()); // cRef
                b.extend_from_slice(&[0; 4]);
                (e.bid, b)
            })
            .collect();
        drop(bbt);
        let bbt_root = self.write_btree(PTYPE_BBT, bbt_entries, 24)?;

        let eof = self.cursor;
        self.close_region()?;
        let amap_last = AMAP_FIRST + self.region * AMAP_SPAN;
        // Space after EOF in the last region counts as free, as in Outlook's own files.
        let free = self.free_closed;

        // Density list: valid, empty.
        let dlist_bid = self.next_bid(false);
        let mut dl = [0u8; 512];
        dl[0] = 0x01; // DFL_BACKFILL_COMPLETE
        page_trailer(
            &mut dl,
            PTYPE_DLIST,
            signature(DLIST_OFFSET, dlist_bid),
            dlist_bid,
        );
        self.write_at(DLIST_OFFSET, &dl)?;

        let next_bid = self.next_bid_index << 2;
        let header = build_header(&HeaderFields {
            next_bid,
            next_page_bid: next_bid,
            unique: (self.next_bid_index as u32).wrapping_mul(7) | 1,
            rgnid,
            eof,
            amap_last,
            amap_free: free,
            nbt_root,
            bbt_root,
        });
        self.write_at(0, &header)?;
        // Zero-fill up to the density list so the reserved area exists on disk.
        let zeros = vec![0u8; (DLIST_OFFSET - header.len() as u64) as usize];
        self.write_at(header.len() as u64, &zeros)?;
        // Make sure the file extends to EOF even when the last region's pages end early.
        let len = self.out.seek(SeekFrom::End(0))?;
        self.file_pos = len;
        if len < eof {
            let pad = vec![0u8; (eof - len) as usize];
            self.write_at(len, &pad)?;
        }
        self.out.flush()?;
        Ok((self.out, eof))
    }
}

/// Fills the 16-byte page trailer of a 512-byte page and its CRC.
fn page_trailer(page: &mut [u8; 512], ptype: u8, sig: u16, bid: u64) {
    let c = crc(0, &page[..496]);
    page[496] = ptype;
    page[497] = ptype;
    page[498..500].copy_from_slice(&sig.to_le_bytes());
    page[500..504].copy_from_slice(&c.to_le_bytes());
    page[504..512].copy_from_slice(&bid.to_le_bytes());
}

pub struct HeaderFields {
    pub next_bid: u64,
    pub next_page_bid: u64,
    pub unique: u32,
    pub rgnid: [u32; 32],
    pub eof: u64,
    pub amap_last: u64,
    pub amap_free: u64,
    pub nbt_root: (u64, u64),
    pub bbt_root: (u64, u64),
}

/// The 564-byte Unicode HEADER with both CRCs.
pub fn build_header(f: &HeaderFields) -> Vec<u8> {
    let mut h = vec![0u8; 564];
    h[0..4].copy_from_slice(b"!BDN");
    h[8..10].copy_from_slice(b"SM");
    h[10..12].copy_from_slice(&23u16.to_le_bytes()); // wVer: Unicode
    h[12..14].copy_from_slice(&19u16.to_le_bytes()); // wVerClient
    h[14] = 0x01; // bPlatformCreate
    h[15] = 0x01; // bPlatformAccess
    h[32..40].copy_from_slice(&f.next_page_bid.to_le_bytes()); // bidNextP
    h[40..44].copy_from_slice(&f.unique.to_le_bytes());
    for (i, n) in f.rgnid.iter().enumerate() {
        h[44 + i * 4..48 + i * 4].copy_from_slice(&n.to_le_bytes());
    }
    // ROOT at 180
    let r = 180;
    h[r + 4..r + 12].copy_from_slice(&f.eof.to_le_bytes());
    h[r + 12..r + 20].copy_from_slice(&f.amap_last.to_le_bytes());
    h[r + 20..r + 28].copy_from_slice(&f.amap_free.to_le_bytes());
    // cbPMapFree stays 0
    h[r + 36..r + 44].copy_from_slice(&f.nbt_root.0.to_le_bytes());
    h[r + 44..r + 52].copy_from_slice(&f.nbt_root.1.to_le_bytes());
    h[r + 52..r + 60].copy_from_slice(&f.bbt_root.0.to_le_bytes());
    h[r + 60..r + 68].copy_from_slice(&f.bbt_root.1.to_le_bytes());
    h[r + 68] = 0x02; // fAMapValid: VALID_AMAP2
    // dwAlign at 252 = 0; rgbFM, rgbFP: deprecated, all 0xFF
    h[256..512].fill(0xFF);
    h[512] = 0x80; // bSentinel
    h[513] = 0x00; // bCryptMethod: NDB_CRYPT_NONE
    h[516..524].copy_from_slice(&f.next_bid.to_le_bytes()); // bidNextB
    let partial = crc(0, &h[8..8 + 471]);
    h[4..8].copy_from_slice(&partial.to_le_bytes());
    let full = crc(0, &h[8..8 + 516]);
    h[524..528].copy_from_slice(&full.to_le_bytes());
    h
}
