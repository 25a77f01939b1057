//! Mail folders as mboxrd files, the one format every mail client and archiver reads.
//!
//! One file per folder: each message is a `From ` separator line, the message, and an empty
//! line. In the mboxrd variant any line that matches `^>*From ` gets one more `>`, so a
//! reader removes exactly one and gets the message back byte for byte — unlike mboxo, where
//! `>From ` in a body is ambiguous.
//!
//! Line ends: a message from Graph (`$value`) has CRLF line ends, as on the wire; an mbox
//! file has LF line ends, as mail clients expect on every platform. The writer turns each
//! CRLF into LF and leaves every other byte alone, lone CRs and LFs included; a message whose
//! every line ended with CRLF is recovered exactly by turning LF back into CRLF (what a
//! client does when it sends or uploads a message it read from an mbox).
//!
//! Messages are streamed: one chunk of the reader at a time, whatever the size of a message
//! or the length of its lines.

use chrono::{DateTime, Utc};
use std::io::{self, BufRead, BufWriter, Write};

/// Writes messages into one mboxrd file.
pub struct MboxWriter<W: Write> {
    w: BufWriter<W>,
    messages: usize,
}

impl<W: Write> MboxWriter<W> {
    pub fn new(w: W) -> Self {
        Self {
            w: BufWriter::with_capacity(64 * 1024, w),
            messages: 0,
        }
    }

    /// Appends one message, read from `mime` (RFC 5322 bytes).
    ///
    /// `envelope_sender` goes into the `From ` line (whitespace and control characters
    /// replaced by `_`; `MAILER-DAEMON` when absent), with `date` in asctime form (the Unix
    /// epoch when absent, so that the same backup always exports to the same bytes).
    ///
    /// If reading `mime` fails part way, the part already written is closed off as a
    /// message, so the mbox stays well-formed, and the read error is returned for the
    /// caller to report that item.
    pub fn append(
        &mut self,
        mut mime: impl BufRead,
        envelope_sender: Option<&str>,
        date: Option<DateTime<Utc>>,
    ) -> io::Result<()> {
        self.w.write_all(&from_line(envelope_sender, date))?;
        self.messages += 1;
        let mut body = Quoter::default();
        let read = loop {
            let chunk = match mime.fill_buf() {
                Ok([]) => break Ok(()),
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            let n = chunk.len();
            body.feed(chunk, &mut self.w)?;
            mime.consume(n);
        };
        body.finish(&mut self.w)?;
        // The empty line that separates messages.
        self.w.write_all(b"\n")?;
        read
    }

    /// How many messages were appended.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.w.into_inner().map_err(|e| e.into_error())
    }
}

/// `From sender Thu Jan  1 00:00:00 1970\n`.
fn from_line(sender: Option<&str>, date: Option<DateTime<Utc>>) -> Vec<u8> {
    let sender: String = sender
        .unwrap_or("")
        .trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let sender = if sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        &sender
    };
    let date = date.unwrap_or(DateTime::UNIX_EPOCH);
    format!("From {sender} {}\n", date.format("%a %b %e %H:%M:%S %Y")).into_bytes()
}

/// Where the quoter is in the current line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum At {
    /// At the start of a line: `gts` '>' seen, then `matched` bytes of "From ". Nothing of
    /// the line has been written yet.
    #[default]
    Start,
    Prefix {
        gts: u64,
        matched: usize,
    },
    /// Inside a line whose start has been written; `cr` when a CR is held back to see
    /// whether an LF follows.
    Rest {
        cr: bool,
    },
}

/// The mboxrd quoting and CRLF → LF rewriting of one message, as a state machine over
/// chunks so that neither a message nor a line is ever held whole.
#[derive(Debug, Default)]
struct Quoter {
    at: At,
}

const FROM: &[u8] = b"From ";

impl Quoter {
    fn feed(&mut self, mut chunk: &[u8], w: &mut impl Write) -> io::Result<()> {
        while !chunk.is_empty() {
            match self.at {
                At::Start => self.at = At::Prefix { gts: 0, matched: 0 },
                At::Prefix { gts, matched } => {
                    let b = chunk[0];
                    if matched == 0 && b == b'>' {
                        self.at = At::Prefix {
                            gts: gts + 1,
                            matched,
                        };
                        chunk = &chunk[1..];
                    } else if b == FROM[matched] {
                        chunk = &chunk[1..];
                        if matched + 1 == FROM.len() {
                            // A line the reader would take for a separator (or for a quoted
                            // one): one more '>'.
                            write_prefix(w, gts + 1, FROM.len())?;
                            self.at = At::Rest { cr: false };
                        } else {
                            self.at = At::Prefix {
                                gts,
                                matched: matched + 1,
                            };
                        }
                    } else {
                        write_prefix(w, gts, matched)?;
                        self.at = At::Rest { cr: false };
                    }
                }
                At::Rest { cr } => {
                    if cr {
                        if chunk[0] != b'\n' {
                            w.write_all(b"\r")?;
                        }
                        self.at = At::Rest { cr: false };
                        continue;
                    }
                    match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                        None => {
                            w.write_all(chunk)?;
                            chunk = &[];
                        }
                        Some(i) if chunk[i] == b'\n' => {
                            w.write_all(&chunk[..=i])?;
                            chunk = &chunk[i + 1..];
                            self.at = At::Start;
                        }
                        Some(i) => {
                            w.write_all(&chunk[..i])?;
                            chunk = &chunk[i + 1..];
                            self.at = At::Rest { cr: true };
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the message: whatever is held back is written, and a last line without a line
    /// end gets one, so the separator's empty line is an empty line.
    fn finish(&mut self, w: &mut impl Write) -> io::Result<()> {
        match self.at {
            At::Start => {}
            At::Prefix { gts, matched } => {
                write_prefix(w, gts, matched)?;
                w.write_all(b"\n")?;
            }
            // A CR held back at the very end is a CRLF cut short: it ends the line too.
            At::Rest { .. } => w.write_all(b"\n")?,
        }
        self.at = At::Start;
        Ok(())
    }
}

fn write_prefix(w: &mut impl Write, gts: u64, matched: usize) -> io::Result<()> {
    const GTS: [u8; 256] = [b'>'; 256];
    let mut left = gts;
    while left > 0 {
        let n = left.min(GTS.len() as u64) as usize;
        w.write_all(&GTS[..n])?;
        left -= n as u64;
    }
    w.write_all(&FROM[..matched])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Feeds `input` in chunks of every size from 1 up, so that state crossing a chunk
    /// boundary is exercised everywhere.
    fn quoted_in_chunks(input: &[u8]) -> Vec<u8> {
        let mut first: Option<Vec<u8>> = None;
        for size in 1..=input.len().max(1) {
            let mut out = Vec::new();
            let mut q = Quoter::default();
            for chunk in input.chunks(size) {
                q.feed(chunk, &mut out).unwrap();
            }
            q.finish(&mut out).unwrap();
            match &first {
                None => first = Some(out),
                Some(f) => assert_eq!(&out, f, "chunk size {size} changed the output"),
            }
        }
        first.unwrap_or_default()
    }

    #[test]
    fn from_lines_at_any_depth_get_one_more_quote() {
        let input = b"From a\n>From b\n>>From c\nFrom\nFro\n >From d\nx From e\n>>>\n";
        let want = b">From a\n>>From b\n>>>From c\nFrom\nFro\n >From d\nx From e\n>>>\n";
        assert_eq!(quoted_in_chunks(input), want);
    }

    #[test]
    fn crlf_becomes_lf_and_lone_cr_stays() {
        assert_eq!(
            quoted_in_chunks(b"a\r\nb\rc\r\n\r\nFrom x\r\n"),
            b"a\nb\rc\n\n>From x\n"
        );
    }

    #[test]
    fn a_last_line_without_line_end_gets_one() {
        assert_eq!(quoted_in_chunks(b"a\nlast"), b"a\nlast\n");
        assert_eq!(quoted_in_chunks(b"a\nFro"), b"a\nFro\n");
        assert_eq!(quoted_in_chunks(b"a\n>>"), b"a\n>>\n");
        assert_eq!(quoted_in_chunks(b"a\r"), b"a\n");
        assert_eq!(quoted_in_chunks(b""), b"");
    }

    #[test]
    fn separator_line_has_sender_and_asctime_date() {
        let t = Utc.with_ymd_and_hms(1996, 1, 3, 1, 5, 34).unwrap();
        assert_eq!(
            from_line(Some("a@b.example"), Some(t)),
            b"From a@b.example Wed Jan  3 01:05:34 1996\n"
        );
        assert_eq!(
            from_line(None, None),
            b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
        );
        assert_eq!(
            from_line(Some(" x y\t@z "), None),
            b"From x_y_@z Thu Jan  1 00:00:00 1970\n"
        );
    }

    #[test]
    fn a_failing_reader_leaves_a_closed_message_and_reports_the_error() {
        struct Failing(usize);
        impl io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                buf[..4].copy_from_slice(b"abc\n");
                Ok(4)
            }
        }
        let mut m = MboxWriter::new(Vec::new());
        let err = m
            .append(io::BufReader::new(Failing(2)), None, None)
            .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        m.append(&b"next\n"[..], None, None).unwrap();
        assert_eq!(m.messages(), 2);
        let out = m.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nabc\nabc\n\n\
             From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nnext\n\n"
        );
    }
}
