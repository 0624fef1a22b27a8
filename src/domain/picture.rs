//! A picture an agent sends: JPEG, PNG or GIF, told by its bytes alone (never by a file name
//! or a declared type), whole, and at most [`Picture::MAX_BYTES`].

use imagesize::ImageType;

/// The kinds of picture an MMS may carry here: what every phone shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picture {
    Jpeg,
    Png,
    Gif,
}

/// Why bytes are not a picture that can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAPicture {
    #[error("only JPEG, PNG and GIF pictures can be sent")]
    Unsupported,
    #[error("the picture is damaged or cut short")]
    Damaged,
}

impl Picture {
    /// Twilio's limit for an MMS's media, in all: one picture, or the pictures of a message.
    pub const MAX_BYTES: usize = 5 * 1024 * 1024;

    /// What `bytes` are, if they are a whole JPEG, PNG or GIF: its kind from its signature,
    /// its header readable with a size, and its structure walked to its end marker (a JPEG
    /// to its EOI, a PNG to its `IEND` chunk, a GIF to its trailer), so an upload cut short
    /// is refused rather than sent half.
    pub fn sniff(bytes: &[u8]) -> Result<Self, NotAPicture> {
        let picture = match imagesize::image_type(bytes) {
            Ok(ImageType::Jpeg) => Self::Jpeg,
            Ok(ImageType::Png) => Self::Png,
            Ok(ImageType::Gif) => Self::Gif,
            _ => return Err(NotAPicture::Unsupported),
        };
        let size = imagesize::blob_size(bytes).map_err(|_| NotAPicture::Damaged)?;
        let whole = match picture {
            Self::Jpeg => jpeg_is_whole(bytes),
            Self::Png => png_is_whole(bytes),
            Self::Gif => bytes.last() == Some(&0x3B),
        };
        if size.width == 0 || size.height == 0 || !whole {
            return Err(NotAPicture::Damaged);
        }
        Ok(picture)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
        }
    }
}

/// Walks a JPEG's segments (skipping each by its length, so an embedded thumbnail's EOI is
/// never taken for the image's) and its entropy-coded scans (where `FF` is followed by `00`
/// or a restart marker) until the EOI marker. Data after the EOI (phones append some) is
/// left alone.
fn jpeg_is_whole(b: &[u8]) -> bool {
    let mut i = 2; // past SOI
    loop {
        // Markers may be padded with any number of FF.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(0xFF), Some(&marker)) = (b.get(i), b.get(i + 1)) else {
            return false;
        };
        i += 2;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        if len < 2 {
            return false;
        }
        i += len;
        if marker == 0xDA {
            // The scan runs until a marker that is neither stuffing nor a restart.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7 | 0xFF)) => i += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// Walks a PNG's chunks by their lengths until `IEND`.
fn png_is_whole(b: &[u8]) -> bool {
    let mut i = 8; // past the signature
    while let Some(header) = b.get(i..i + 8) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = i.saturating_add(12).saturating_add(len);
        if end > b.len() {
            return false;
        }
        if &header[4..8] == b"IEND" {
            return true;
        }
        i = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest pictures of each kind (1×1), whole.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8,
        0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

    /// A baseline JPEG's skeleton: SOI, an APP0, a SOF0 with its size, a scan whose data
    /// holds stuffing and a restart marker, and EOI.
    fn jpeg() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend([0xFF, 0xE0, 0x00, 0x10]);
        j.extend(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
        j.extend([
            0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00,
        ]);
        j.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        j.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        j.extend([0xFF, 0xD9]);
        j
    }

    #[test]
    fn whole_pictures_are_told_by_their_bytes() {
        assert_eq!(Picture::sniff(PNG), Ok(Picture::Png));
        assert_eq!(Picture::sniff(GIF), Ok(Picture::Gif));
        assert_eq!(Picture::sniff(&jpeg()), Ok(Picture::Jpeg));
        assert_eq!(Picture::Png.content_type(), "image/png");
        let mut trailing = jpeg();
        trailing.extend(b"appended by a phone");
        assert_eq!(Picture::sniff(&trailing), Ok(Picture::Jpeg));
    }

    #[test]
    fn anything_else_is_unsupported() {
        for other in [
            &b"<html><script>alert(1)</script></html>"[..],
            b"",
            b"GIF",
            b"RIFF\x24\x00\x00\x00WEBPVP8 ",
            b"%PDF-1.7",
        ] {
            assert_eq!(
                Picture::sniff(other),
                Err(NotAPicture::Unsupported),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_picture_cut_short_is_damaged() {
        let j = jpeg();
        for cut in [j.len() - 1, j.len() - 2, j.len() - 5, 25] {
            assert_eq!(
                Picture::sniff(&j[..cut]),
                Err(NotAPicture::Damaged),
                "JPEG cut at {cut}"
            );
        }
        // An EOI inside a segment (a thumbnail's) does not end the image.
        let mut thumbnail = j[..2].to_vec();
        thumbnail.extend([0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9]);
        thumbnail.extend(&j[2..j.len() - 3]);
        assert_eq!(Picture::sniff(&thumbnail), Err(NotAPicture::Damaged));
        for cut in [PNG.len() - 1, PNG.len() - 12, 40] {
            assert_eq!(
                Picture::sniff(&PNG[..cut]),
                Err(NotAPicture::Damaged),
                "PNG cut at {cut}"
            );
        }
        assert_eq!(
            Picture::sniff(&GIF[..GIF.len() - 1]),
            Err(NotAPicture::Damaged)
        );
    }
}
