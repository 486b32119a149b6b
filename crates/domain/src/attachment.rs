//! Files sent in a chat: which kinds Parley accepts, told by their bytes rather than by what
//! the sender claims, and how their names are made safe to show and to offer for download.

use crate::error::ValidationErrors;
use crate::ids::AttachmentId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest file name kept (in characters); longer ones are shortened, keeping the extension.
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 120;

/// A file attached to a message, as both sides see it in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: AttachmentId,
    /// The sender's file name, made safe (no folders, no control characters).
    pub name: String,
    /// The type Parley found in the file's bytes (never the sender's claim).
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

impl Attachment {
    /// Images are shown inline in the chat; everything else is offered as a download.
    #[must_use]
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// A kind of file Parley accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    pub content_type: &'static str,
    /// The extension a name gets when it has none of the kind's own.
    pub extension: &'static str,
    /// Other extensions that name the same kind.
    pub also: &'static [&'static str],
}

const PNG: FileKind = FileKind { content_type: "image/png", extension: "png", also: &[] };
const JPEG: FileKind = FileKind { content_type: "image/jpeg", extension: "jpg", also: &["jpeg"] };
const GIF: FileKind = FileKind { content_type: "image/gif", extension: "gif", also: &[] };
const WEBP: FileKind = FileKind { content_type: "image/webp", extension: "webp", also: &[] };
const PDF: FileKind = FileKind { content_type: "application/pdf", extension: "pdf", also: &[] };
const TEXT: FileKind = FileKind { content_type: "text/plain; charset=utf-8", extension: "txt", also: &["log"] };
const CSV: FileKind = FileKind { content_type: "text/csv; charset=utf-8", extension: "csv", also: &[] };
const DOCX: FileKind = FileKind {
    content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    extension: "docx",
    also: &[],
};
const XLSX: FileKind = FileKind {
    content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    extension: "xlsx",
    also: &[],
};
const PPTX: FileKind = FileKind {
    content_type: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    extension: "pptx",
    also: &[],
};
const ZIP: FileKind = FileKind { content_type: "application/zip", extension: "zip", also: &[] };

/// What the upload limits say, for error messages and documentation.
pub const ACCEPTED_KINDS: &str =
    "PNG, JPEG, GIF and WebP images, PDF, plain text, CSV, Word, Excel, PowerPoint and ZIP";

fn extension_of(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn named(kind: FileKind, ext: Option<&str>) -> bool {
    ext.is_some_and(|e| e == kind.extension || kind.also.contains(&e))
}

/// The kind of a file, told by its first bytes (and, for ZIP containers and text, by the name's
/// extension); `None` for anything Parley does not accept: executables, HTML, SVG (which can
/// carry script), archives other than ZIP, unknown binaries.
#[must_use]
pub fn detect(name: &str, bytes: &[u8]) -> Option<FileKind> {
    let ext = extension_of(name);
    let ext = ext.as_deref();
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(PNG)
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some(JPEG)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(GIF)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(WEBP)
    } else if bytes.starts_with(b"%PDF-") {
        Some(PDF)
    } else if bytes.starts_with(b"PK\x03\x04") {
        Some([DOCX, XLSX, PPTX].into_iter().find(|k| named(*k, ext)).unwrap_or(ZIP))
    } else if [TEXT, CSV].into_iter().any(|k| named(k, ext)) && is_plain_text(bytes) {
        Some(if named(CSV, ext) { CSV } else { TEXT })
    } else {
        None
    }
}

/// UTF-8 without NUL or other control characters than tab, line feed, carriage return and
/// form feed (so markup sniffers and terminals find nothing to act on).
fn is_plain_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes)
        .is_ok_and(|s| s.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}')))
}

/// The sender's file name made safe: the last path component only, control and
/// format characters and quotes dropped, whitespace collapsed, at most
/// [`MAX_ATTACHMENT_NAME_CHARS`] characters, and ending in an extension of its kind.
#[must_use]
pub fn safe_name(raw: &str, kind: FileKind) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '"' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    let mut name = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    name = name.trim_matches('.').to_owned();
    if !named(kind, extension_of(&name).as_deref()) {
        if name.is_empty() {
            name = "attachment".into();
        }
        name = format!("{name}.{}", kind.extension);
    }
    if name.chars().count() > MAX_ATTACHMENT_NAME_CHARS {
        let ext = extension_of(&name).unwrap_or_default();
        let keep = MAX_ATTACHMENT_NAME_CHARS - ext.chars().count() - 1;
        let stem: String = name.chars().take(keep).collect();
        name = format!("{}.{ext}", stem.trim_end());
    }
    name
}

/// Checks an upload: not empty, not over `max_bytes`, of an accepted kind.
///
/// # Errors
/// `/file` with `empty`, `too_large` or `type_not_allowed`.
pub fn check_upload(raw_name: &str, bytes: &[u8], max_bytes: u64) -> Result<(String, FileKind), ValidationErrors> {
    if bytes.is_empty() {
        return Err(ValidationErrors::single("/file", "empty", "the file is empty"));
    }
    if bytes.len() as u64 > max_bytes {
        return Err(ValidationErrors::single("/file", "too_large", format!("files may be at most {max_bytes} bytes")));
    }
    match detect(raw_name, bytes) {
        Some(kind) => Ok((safe_name(raw_name, kind), kind)),
        None => Err(ValidationErrors::single(
            "/file",
            "type_not_allowed",
            format!("this kind of file cannot be sent; accepted: {ACCEPTED_KINDS}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn kinds_are_told_by_their_bytes_not_by_their_name() {
        assert_eq!(detect("photo.pdf", PNG_BYTES), Some(PNG), "a PNG named .pdf is a PNG");
        assert_eq!(detect("x", b"%PDF-1.7\n"), Some(PDF));
        assert_eq!(detect("a.jpeg", b"\xFF\xD8\xFF\xE0"), Some(JPEG));
        assert_eq!(detect("a.gif", b"GIF89a...."), Some(GIF));
        assert_eq!(detect("a.webp", b"RIFF\0\0\0\0WEBPVP8 "), Some(WEBP));
        assert_eq!(detect("report.docx", b"PK\x03\x04rest"), Some(DOCX));
        assert_eq!(detect("sheet.XLSX", b"PK\x03\x04rest"), Some(XLSX));
        assert_eq!(detect("bundle", b"PK\x03\x04rest"), Some(ZIP));
        assert_eq!(detect("notes.txt", "héllo\nworld\t1".as_bytes()), Some(TEXT));
        assert_eq!(detect("data.csv", b"a,b\n1,2\n"), Some(CSV));
    }

    #[test]
    fn active_or_unknown_content_is_refused() {
        assert_eq!(detect("page.html", b"<html><script>alert(1)</script>"), None);
        assert_eq!(detect("logo.svg", b"<svg onload=alert(1)>"), None);
        assert_eq!(detect("run.exe", b"MZ\x90\0"), None);
        assert_eq!(detect("notes.txt", b"binary\0junk"), None, "NUL is not text");
        assert_eq!(detect("notes.txt", b"\xff\xfe"), None, "not UTF-8");
        assert_eq!(detect("evil.txt", "a\u{1b}[31m".as_bytes()), None, "escape sequences are not text");
        assert_eq!(detect("noext", b"hello"), None, "text needs a text name");
    }

    #[test]
    fn names_lose_folders_controls_and_quotes_and_keep_their_kind() {
        assert_eq!(safe_name("../../etc/passwd.png", PNG), "passwd.png");
        assert_eq!(safe_name("C:\\Users\\me\\scan.PDF", PDF), "scan.PDF");
        assert_eq!(safe_name("in\u{0}voi\"ce\n 2024 .pdf", PDF), "invoice 2024 .pdf");
        assert_eq!(safe_name("photo.pdf", PNG), "photo.pdf.png", "the extension tells the truth");
        assert_eq!(safe_name("", PNG), "attachment.png");
        assert_eq!(safe_name("gnp.exe\u{202e}", PNG), "gnp.exe.png", "no right-to-left override");
        let long = format!("{}.pdf", "x".repeat(300));
        let got = safe_name(&long, PDF);
        assert_eq!(got.chars().count(), MAX_ATTACHMENT_NAME_CHARS);
        assert!(got.ends_with(".pdf"));
    }

    #[test]
    fn uploads_must_be_non_empty_within_the_limit_and_accepted() {
        let code = |r: Result<(String, FileKind), ValidationErrors>| r.unwrap_err().0[0].code;
        assert_eq!(code(check_upload("a.png", b"", 10)), "empty");
        assert_eq!(code(check_upload("a.png", PNG_BYTES, 4)), "too_large");
        assert_eq!(code(check_upload("a.svg", b"<svg/>", 100)), "type_not_allowed");
        assert_eq!(check_upload("a.png", PNG_BYTES, 100).unwrap(), ("a.png".to_owned(), PNG));
    }

    proptest::proptest! {
        /// Whatever the name, the kept one has no folder, control or quote character, stays
        /// within the length limit and ends in the kind's extension.
        #[test]
        fn safe_names_are_always_safe(raw in "\\PC{0,300}") {
            let n = safe_name(&raw, PDF);
            proptest::prop_assert!(!n.contains(['/', '\\', '"']) && !n.chars().any(char::is_control));
            proptest::prop_assert!(n.chars().count() <= MAX_ATTACHMENT_NAME_CHARS);
            proptest::prop_assert!(n.to_ascii_lowercase().ends_with(".pdf"));
        }
    }
}
