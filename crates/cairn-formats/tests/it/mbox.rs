use crate::tenant;
use cairn_formats::mbox::MboxWriter;
use cairn_sim::content::message_plan;
use cairn_sim::keys::Res;
use cairn_sim::mime::render;
use cairn_sim::tenant::wk;
use chrono::{TimeZone, Utc};
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::process::Command;

/// Reads the mbox with Python's standard `mailbox` module, which knows nothing of our
/// writer: it splits on `From ` lines after an empty line and hands back each message's
/// bytes; the script then removes one `>` from lines matching `^>+From ` (mboxrd).
/// Returns the `From ` lines and the sha256 of each message, in order.
fn python_read(mbox: &[u8]) -> (Vec<String>, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("cairn-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{:016x}.mbox", hash_of(mbox)));
    std::fs::write(&path, mbox).unwrap();
    let script = r#"
import hashlib, mailbox, re, sys
box = mailbox.mbox(sys.argv[1], create=False)
print(len(box))
for key in box.iterkeys():
    raw = box.get_bytes(key)
    body = re.sub(rb'(?m)^>(>*From )', rb'\1', raw)
    from_ = box.get_message(key).get_from()
    print(from_ + '\t' + hashlib.sha256(body).hexdigest())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let count: usize = lines.next().unwrap().parse().unwrap();
    let (froms, sums): (Vec<String>, Vec<String>) = lines
        .map(|l| {
            let (f, s) = l.rsplit_once('\t').unwrap();
            (f.to_string(), s.to_string())
        })
        .unzip();
    assert_eq!(count, sums.len());
    (froms, sums)
}

fn hash_of(b: &[u8]) -> u64 {
    u64::from_be_bytes(Sha256::digest(b)[..8].try_into().unwrap())
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The message as the mbox holds it: CRLF → LF, a line end after the last line.
fn expected(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    let mut i = 0;
    while i < msg.len() {
        if msg[i] == b'\r' && msg.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(msg[i]);
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

fn tricky_messages() -> Vec<Vec<u8>> {
    vec![
        // Bodies with lines that look like separators, quoted to any depth.
        b"From: a@example.com\nSubject: quoting\n\nFrom the start of a line\n>From quoted once\n>>From quoted twice\n\nFrom after an empty line\nFrom\nFromage\n  From indented\n>>>\n".to_vec(),
        // CRLF, and a last line without a line end.
        b"Subject: crlf\r\n\r\nline one\r\nFrom here\r\n>From there\r\nno end".to_vec(),
        // Empty.
        Vec::new(),
        // Binary, non-UTF-8, lone CR kept.
        b"Subject: bytes\n\n\xff\xfe\x00\x01 caf\xe9\rmiddle\n\x80From x\n".to_vec(),
        // A message that ends in empty lines.
        b"Subject: trailing\n\nbody\n\n\n".to_vec(),
    ]
}

#[test]
fn python_reads_back_every_message_byte_for_byte() {
    let t = tenant();
    let mut messages: Vec<(Vec<u8>, Option<String>)> = Vec::new();
    for folder in [wk::INBOX, wk::SENT] {
        for n in 0..25 {
            let plan = message_plan(&t, Res::User(1), folder, n);
            messages.push((render(&plan), Some(plan.from.email.clone())));
        }
    }
    for m in tricky_messages() {
        messages.push((m, None));
    }
    let date = Utc.with_ymd_and_hms(2026, 3, 1, 9, 5, 7).unwrap();
    let mut w = MboxWriter::new(Vec::new());
    for (m, sender) in &messages {
        w.append(&m[..], sender.as_deref(), Some(date)).unwrap();
    }
    assert_eq!(w.messages(), messages.len());
    let mbox = w.finish().unwrap();

    let (froms, sums) = python_read(&mbox);
    assert_eq!(sums.len(), messages.len());
    for (i, ((m, sender), sum)) in messages.iter().zip(&sums).enumerate() {
        assert_eq!(*sum, sha(&expected(m)), "message {i}");
        let sender = sender.as_deref().unwrap_or("MAILER-DAEMON");
        assert_eq!(froms[i], format!("{sender} Sun Mar  1 09:05:07 2026"));
    }
    // The simulator's MIME has CRLF line ends: the mbox has none.
    assert!(!mbox.windows(2).any(|w| w == b"\r\n"));
}

#[test]
fn lf_messages_round_trip_exactly() {
    let msg = b"Subject: x\n\nFrom a\n>From b\nend\n".to_vec();
    let mut w = MboxWriter::new(Vec::new());
    w.append(&msg[..], Some("x@example.com"), None).unwrap();
    w.append(&msg[..], Some("y@example.com"), None).unwrap();
    let mbox = w.finish().unwrap();
    assert_eq!(
        String::from_utf8(mbox.clone()).unwrap(),
        "From x@example.com Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From a\n>>From b\nend\n\n\
         From y@example.com Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From a\n>>From b\nend\n\n"
    );
    let (_, sums) = python_read(&mbox);
    assert_eq!(sums, [sha(&msg), sha(&msg)]);
}

/// A reader of `len` bytes of one endless line, made on the fly.
struct Endless {
    left: u64,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b'A');
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts bytes instead of keeping them.
struct Count(u64);

impl io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_large_message_with_one_endless_line_streams_through() {
    let len = 64 * 1024 * 1024;
    let mut w = MboxWriter::new(Count(0));
    w.append(io::BufReader::new(Endless { left: len }), None, None)
        .unwrap();
    let out = w.finish().unwrap();
    let from_line = "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n".len() as u64;
    assert_eq!(
        out.0,
        from_line + len + 2,
        "line end added, then the empty line"
    );
}
