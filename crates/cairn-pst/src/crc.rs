//! The MS-PST CRC (section 5.3) and block/page signature (section 5.5).
//!
//! The CRC is the reflected CRC-32 polynomial 0xEDB88320 run with a zero
//! initial value and no final inversion.

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// CRC of `data` continuing from `crc` (0 to start), as MS-PST computes it.
pub fn crc(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

/// The 16-bit signature of a block or B-tree page stored at `ib` with id `bid`.
pub fn signature(ib: u64, bid: u64) -> u16 {
    let x = (ib ^ bid) as u32;
    ((x >> 16) as u16) ^ (x as u16)
}
