//! Decoding 8-bit and code-page strings.

/// Windows-1252 0x80..=0x9F; the five unassigned bytes map to the C1 controls.
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

pub(crate) fn decode_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x80..0xA0).contains(&b) {
                char::from_u32(u32::from(CP1252_HIGH[usize::from(b - 0x80)])).unwrap_or('\u{FFFD}')
            } else {
                char::from(b)
            }
        })
        .collect()
}

pub(crate) fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

pub(crate) fn decode_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn decode_utf16be(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// An 8-bit string of unstated code page: UTF-8 when it is valid UTF-8, else Windows-1252.
pub(crate) fn decode_8bit(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => decode_cp1252(bytes),
    }
}

/// Bytes in a Windows code page. The common ones are decoded exactly; any other falls back
/// to [`decode_8bit`].
pub(crate) fn decode_code_page(code_page: u32, bytes: &[u8]) -> String {
    match code_page {
        1200 => decode_utf16le(bytes),
        1201 => decode_utf16be(bytes),
        65001 => String::from_utf8_lossy(bytes).into_owned(),
        1252 => decode_cp1252(bytes),
        28591 | 20127 => decode_latin1(bytes),
        _ => decode_8bit(bytes),
    }
}
