//! Xilinx `.bit` files: parsed and checked whole before anything is sent to an FPGA.
//!
//! The layout (public, Xilinx's bitstream file format): a 13-byte preamble
//! `00 09 0f f0 0f f0 0f f0 0f f0 00 00 01`, then tagged fields, each a one-byte key and a
//! big-endian `u16` length followed by that many bytes of NUL-terminated text: `a` the design
//! name, `b` the FPGA part, `c` the date, `d` the time; then `e` with a big-endian `u32`
//! length and the configuration bitstream itself, which holds the sync word `AA 99 55 66`
//! where configuration starts.
//!
//! [`Bitfile::read`] refuses a file, naming it and what is wrong, when a field is missing or
//! malformed, when the declared length is not the bytes that follow, or when there is no
//! sync word; [`Bitfile::check_part`] when it is built for another FPGA.

use std::fmt;
use std::path::{Path, PathBuf};

/// The first bytes of every `.bit` file.
pub const PREAMBLE: [u8; 13] = [0x00, 0x09, 0x0f, 0xf0, 0x0f, 0xf0, 0x0f, 0xf0, 0x0f, 0xf0, 0x00, 0x00, 0x01];
/// Where configuration starts within the bitstream.
pub const SYNC_WORD: [u8; 4] = [0xaa, 0x99, 0x55, 0x66];
/// The text fields, in file order, with what each holds.
const TEXT_FIELDS: [(u8, &str); 4] = [(b'a', "design name"), (b'b', "part"), (b'c', "date"), (b'd', "time")];

/// What is wrong with a bitfile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BitfileProblem {
    /// The file cannot be read.
    Unreadable(String),
    /// It does not start with the `.bit` preamble.
    NoPreamble,
    /// A field is missing or another is in its place.
    MissingField { key: char, what: &'static str, found: Option<u8> },
    /// A field's length runs past the end of the file.
    Truncated { key: char, what: &'static str },
    /// A text field is not NUL-terminated printable ASCII, or is empty.
    BadText { key: char, what: &'static str },
    /// The bitstream's declared length is not the bytes that follow it.
    LengthMismatch { declared: u64, actual: u64 },
    /// The bitstream has no sync word.
    NoSyncWord,
    /// The file is for another FPGA.
    WrongPart { file: String, board: String },
}

impl fmt::Display for BitfileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitfileProblem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            BitfileProblem::NoPreamble => {
                f.write_str("not a Xilinx .bit file (it does not start with the 13-byte .bit preamble 00 09 0f f0 ...)")
            }
            BitfileProblem::MissingField { key, what, found: Some(b) } => {
                write!(f, "field '{key}' ({what}) is missing: found byte 0x{b:02x} where it belongs")
            }
            BitfileProblem::MissingField { key, what, found: None } => {
                write!(f, "field '{key}' ({what}) is missing: the file ends before it")
            }
            BitfileProblem::Truncated { key, what } => {
                write!(f, "field '{key}' ({what}) runs past the end of the file")
            }
            BitfileProblem::BadText { key, what } => {
                write!(f, "field '{key}' ({what}) is not NUL-terminated printable text")
            }
            BitfileProblem::LengthMismatch { declared, actual } => write!(
                f,
                "the bitstream (field 'e') declares {declared} bytes but {actual} follow (a truncated or padded file)"
            ),
            BitfileProblem::NoSyncWord => f.write_str("the bitstream holds no sync word AA 99 55 66"),
            BitfileProblem::WrongPart { file, board } => {
                write!(f, "it is built for FPGA part {file}, but this board's FPGA is {board}")
            }
        }
    }
}

/// A bitfile that cannot be used, naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FPGA bitfile {}: {problem}", path.display())]
pub struct BitfileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: BitfileProblem,
}

/// The header of a valid `.bit` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfile {
    /// Field `a`: the design name (often with `;UserID=...;Version=...` appended).
    pub design: String,
    /// Field `b`: the FPGA part (`7a75tfgg484`).
    pub part: String,
    /// Field `c`: the build date.
    pub date: String,
    /// Field `d`: the build time.
    pub time: String,
    /// Bytes of the bitstream (field `e`).
    pub bitstream_bytes: u64,
}

/// Reads `n` bytes at `*at`, advancing it.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = at.checked_add(n)?;
    let slice = bytes.get(*at..end)?;
    *at = end;
    Some(slice)
}

/// A part name as compared: lower case, without a leading `xc`.
fn normal_part(part: &str) -> String {
    let lower = part.trim().to_ascii_lowercase();
    lower.strip_prefix("xc").map(str::to_string).unwrap_or(lower)
}

impl Bitfile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Bitfile, BitfileError> {
        let error = |problem| BitfileError { path: path.to_path_buf(), problem };
        let bytes = std::fs::read(path).map_err(|e| error(BitfileProblem::Unreadable(e.to_string())))?;
        Bitfile::parse(&bytes).map_err(error)
    }

    /// Checks the bytes of a `.bit` file.
    pub fn parse(bytes: &[u8]) -> Result<Bitfile, BitfileProblem> {
        if !bytes.starts_with(&PREAMBLE) {
            return Err(BitfileProblem::NoPreamble);
        }
        let mut at = PREAMBLE.len();
        let mut texts: Vec<String> = Vec::with_capacity(TEXT_FIELDS.len());
        for (key, what) in TEXT_FIELDS {
            let k = key as char;
            match bytes.get(at) {
                Some(&b) if b == key => at += 1,
                found => return Err(BitfileProblem::MissingField { key: k, what, found: found.copied() }),
            }
            let len = take(bytes, &mut at, 2).ok_or(BitfileProblem::Truncated { key: k, what })?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let text = take(bytes, &mut at, len).ok_or(BitfileProblem::Truncated { key: k, what })?;
            let Some((&0, body)) = text.split_last() else {
                return Err(BitfileProblem::BadText { key: k, what });
            };
            if body.is_empty() || !body.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                return Err(BitfileProblem::BadText { key: k, what });
            }
            texts.push(String::from_utf8_lossy(body).into_owned());
        }
        match bytes.get(at) {
            Some(b'e') => at += 1,
            found => {
                return Err(BitfileProblem::MissingField { key: 'e', what: "bitstream", found: found.copied() });
            }
        }
        let len = take(bytes, &mut at, 4).ok_or(BitfileProblem::Truncated { key: 'e', what: "bitstream" })?;
        let declared = u64::from(u32::from_be_bytes([len[0], len[1], len[2], len[3]]));
        let stream = &bytes[at..];
        if declared != stream.len() as u64 {
            return Err(BitfileProblem::LengthMismatch { declared, actual: stream.len() as u64 });
        }
        if !stream.windows(SYNC_WORD.len()).any(|w| w == SYNC_WORD) {
            return Err(BitfileProblem::NoSyncWord);
        }
        let mut texts = texts.into_iter();
        let mut next = || texts.next().expect("four text fields");
        Ok(Bitfile { design: next(), part: next(), date: next(), time: next(), bitstream_bytes: declared })
    }

    /// Checks the file is built for `board_part` (compared without case and a leading `xc`).
    pub fn check_part(&self, board_part: &str) -> Result<(), BitfileProblem> {
        if normal_part(&self.part) == normal_part(board_part) {
            Ok(())
        } else {
            Err(BitfileProblem::WrongPart { file: self.part.clone(), board: board_part.to_string() })
        }
    }

    /// The bytes of a `.bit` file with these fields around `bitstream` (which should hold the
    /// sync word): for tests, and for making a bitfile for the emulated board.
    pub fn build(design: &str, part: &str, date: &str, time: &str, bitstream: &[u8]) -> Vec<u8> {
        let mut out = PREAMBLE.to_vec();
        for (key, text) in [(b'a', design), (b'b', part), (b'c', date), (b'd', time)] {
            out.push(key);
            out.extend_from_slice(&(text.len() as u16 + 1).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        }
        out.push(b'e');
        out.extend_from_slice(&(bitstream.len() as u32).to_be_bytes());
        out.extend_from_slice(bitstream);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = vec![0xff; 16];
        s.extend_from_slice(&[0x00, 0x00, 0x00, 0xbb, 0x11, 0x22, 0x00, 0x44]);
        s.extend_from_slice(&SYNC_WORD);
        s.extend_from_slice(&[0x20, 0x00, 0x00, 0x00, 0x30, 0x02, 0x20, 0x01]);
        s
    }

    fn good() -> Vec<u8> {
        Bitfile::build(
            "sinaps_top;UserID=0XFFFFFFFF;Version=2023.2",
            "7a75tfgg484",
            "2024/03/01",
            "12:00:00",
            &stream(),
        )
    }

    #[test]
    fn a_good_file_reads_back_its_fields() {
        let b = Bitfile::parse(&good()).unwrap();
        assert_eq!(b.design, "sinaps_top;UserID=0XFFFFFFFF;Version=2023.2");
        assert_eq!((b.part.as_str(), b.date.as_str(), b.time.as_str()), ("7a75tfgg484", "2024/03/01", "12:00:00"));
        assert_eq!(b.bitstream_bytes, stream().len() as u64);
        b.check_part("7a75tfgg484").unwrap();
        b.check_part("XC7A75TFGG484").unwrap();
        let e = b.check_part("7a200tfbg484").unwrap_err().to_string();
        assert!(e.contains("7a75tfgg484") && e.contains("7a200tfbg484"), "{e}");
    }

    #[test]
    fn every_malformed_header_is_named() {
        let g = good();
        assert_eq!(Bitfile::parse(&[]), Err(BitfileProblem::NoPreamble));
        assert_eq!(Bitfile::parse(b"hello world, not a bitstream"), Err(BitfileProblem::NoPreamble));
        // The preamble alone: field 'a' is missing.
        assert_eq!(
            Bitfile::parse(&PREAMBLE),
            Err(BitfileProblem::MissingField { key: 'a', what: "design name", found: None })
        );
        // Field 'b' replaced by 'x'.
        let mut wrong_key = g.clone();
        let b_at = PREAMBLE.len() + 3 + "sinaps_top;UserID=0XFFFFFFFF;Version=2023.2".len() + 1;
        assert_eq!(wrong_key[b_at], b'b');
        wrong_key[b_at] = b'x';
        assert_eq!(
            Bitfile::parse(&wrong_key),
            Err(BitfileProblem::MissingField { key: 'b', what: "part", found: Some(b'x') })
        );
        // A length running past the end.
        let mut long = g[..PREAMBLE.len() + 1].to_vec();
        long.extend_from_slice(&[0x7f, 0xff, b'x']);
        assert_eq!(Bitfile::parse(&long), Err(BitfileProblem::Truncated { key: 'a', what: "design name" }));
        // Cut inside the length itself.
        assert_eq!(
            Bitfile::parse(&g[..PREAMBLE.len() + 2]),
            Err(BitfileProblem::Truncated { key: 'a', what: "design name" })
        );
        // Text without its NUL, empty text, binary text.
        let mut no_nul = g.clone();
        no_nul[b_at - 1] = b'!';
        assert_eq!(Bitfile::parse(&no_nul), Err(BitfileProblem::BadText { key: 'a', what: "design name" }));
        let empty = Bitfile::build("", "7a75tfgg484", "d", "t", &stream());
        assert_eq!(Bitfile::parse(&empty), Err(BitfileProblem::BadText { key: 'a', what: "design name" }));
        let binary = Bitfile::build("top\u{7}", "7a75tfgg484", "d", "t", &stream());
        assert_eq!(Bitfile::parse(&binary), Err(BitfileProblem::BadText { key: 'a', what: "design name" }));
        // No 'e' field.
        let e_at = g.len() - stream().len() - 5;
        assert_eq!(g[e_at], b'e');
        assert_eq!(
            Bitfile::parse(&g[..e_at]),
            Err(BitfileProblem::MissingField { key: 'e', what: "bitstream", found: None })
        );
        assert_eq!(Bitfile::parse(&g[..e_at + 3]), Err(BitfileProblem::Truncated { key: 'e', what: "bitstream" }));
    }

    #[test]
    fn the_declared_length_must_be_the_bytes_that_follow_and_hold_the_sync_word() {
        let g = good();
        let n = stream().len() as u64;
        assert_eq!(
            Bitfile::parse(&g[..g.len() - 1]),
            Err(BitfileProblem::LengthMismatch { declared: n, actual: n - 1 })
        );
        let mut padded = g.clone();
        padded.push(0);
        assert_eq!(Bitfile::parse(&padded), Err(BitfileProblem::LengthMismatch { declared: n, actual: n + 1 }));
        let no_sync = Bitfile::build("top", "7a75tfgg484", "d", "t", &[0xff; 64]);
        assert_eq!(Bitfile::parse(&no_sync), Err(BitfileProblem::NoSyncWord));
        let empty = Bitfile::build("top", "7a75tfgg484", "d", "t", &[]);
        assert_eq!(Bitfile::parse(&empty), Err(BitfileProblem::NoSyncWord));
        // The sync word split across the end is not a sync word.
        let cut = Bitfile::build("top", "7a75tfgg484", "d", "t", &SYNC_WORD[..3]);
        assert_eq!(Bitfile::parse(&cut), Err(BitfileProblem::NoSyncWord));
    }

    #[test]
    fn an_error_names_the_file_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("ephysd-bitfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("short.bit");
        let g = good();
        std::fs::write(&path, &g[..g.len() - 10]).unwrap();
        let e = Bitfile::read(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("FPGA bitfile {}: ", path.display())) && e.contains("declares"), "{e}");
        let missing = dir.join("missing.bit");
        let e = Bitfile::read(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.bit") && e.contains("cannot be read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
