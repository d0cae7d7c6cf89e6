//! Decoding: every supported format, EXIF orientation, raw pixel buffers,
//! and the typed errors for what is not an image or too large.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_vision::{DecodeOptions, PixelFormat, VisionError, decode, from_pixels};
use image::{ImageFormat, Rgb, RgbImage as Img};
use std::io::Cursor;

/// A 4×2 image: left half red, right half blue.
fn sample() -> Img {
    Img::from_fn(
        4,
        2,
        |x, _| if x < 2 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) },
    )
}

fn encode(format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    sample().write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[test]
fn every_supported_format_decodes() {
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::WebP,
        ImageFormat::Gif,
        ImageFormat::Bmp,
    ] {
        let img =
            decode(&encode(format), &DecodeOptions::default()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((img.width(), img.height()), (4, 2), "{format:?}");
        let first = &img.pixels()[..3];
        let last = &img.pixels()[img.pixels().len() - 3..];
        // Lossy formats may shift colours a little; red stays red, blue blue.
        assert!(first[0] > 200 && first[2] < 60, "{format:?}: {first:?}");
        assert!(last[2] > 200 && last[0] < 60, "{format:?}: {last:?}");
    }
}

/// A JPEG with an EXIF APP1 segment saying "rotate 90° clockwise" (6).
fn jpeg_with_orientation(orientation: u8) -> Vec<u8> {
    let jpeg = encode(ImageFormat::Jpeg);
    let mut tiff = b"MM\0*\0\0\0\x08".to_vec();
    tiff.extend([0, 1]); // one IFD entry
    tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0]); // Orientation, SHORT, 1
    tiff.extend([0, 0, 0, 0]); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let len = u16::try_from(app1.len() + 2).unwrap().to_be_bytes();
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1, len[0], len[1]]);
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_honoured() {
    let upright = decode(&jpeg_with_orientation(1), &DecodeOptions::default()).unwrap();
    assert_eq!((upright.width(), upright.height()), (4, 2));
    let rotated = decode(&jpeg_with_orientation(6), &DecodeOptions::default()).unwrap();
    assert_eq!((rotated.width(), rotated.height()), (2, 4));
    // Rotated 90° clockwise, the red left half is now the top.
    let top = &rotated.pixels()[..3];
    let bottom = &rotated.pixels()[rotated.pixels().len() - 3..];
    assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
}

#[test]
fn a_truncated_jpeg_is_refused_not_filled_in() {
    // Big enough for a scan of some length: a gradient, so that the
    // entropy-coded data holds stuffed 0xFF bytes too.
    let img = Img::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 255]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
    assert!(decode(&jpeg, &DecodeOptions::default()).is_ok());
    // Bytes after the end marker (some cameras append their own) are not
    // the image's: still accepted.
    let mut trailer = jpeg.clone();
    trailer.extend(b"trailing maker notes");
    assert_eq!(decode(&trailer, &DecodeOptions::default()).unwrap().width(), 64);
    // Cut anywhere from inside the headers to just before the end marker.
    for keep in [40, jpeg.len() / 2, jpeg.len() - 2, jpeg.len() - 1] {
        let e = decode(&jpeg[..keep], &DecodeOptions::default()).unwrap_err();
        assert!(matches!(e, VisionError::Decode { .. }), "{keep}: {e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "cannot decode the JPEG image: the data ends after {keep} bytes, before the image does"
            )),
            "{keep}: {e}"
        );
    }
}

#[test]
fn raw_pixels_like_a_canvas_image_data() {
    let rgba: Vec<u8> = (0..4 * 2).flat_map(|i| [i as u8, 10, 20, 255]).collect();
    let img = from_pixels(4, 2, PixelFormat::Rgba8, &rgba, &DecodeOptions::default()).unwrap();
    assert_eq!(&img.pixels()[..6], &[0, 10, 20, 1, 10, 20]);
    let e = from_pixels(4, 2, PixelFormat::Rgb8, &rgba, &DecodeOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the pixel buffer has 32 bytes but 4x2 RGB8 needs 24"
    );
    let e = from_pixels(0, 2, PixelFormat::Rgb8, &[], &DecodeOptions::default()).unwrap_err();
    assert_eq!(e, VisionError::Empty { width: 0, height: 2 });
}

#[test]
fn what_is_not_an_image_is_named() {
    let e = decode(b"%PDF-1.7 not an image", &DecodeOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a supported image (PNG, JPEG, WebP, GIF or BMP): the data starts with 25 50 44 46 2d 31 2e 37"
    );
    let e = decode(b"", &DecodeOptions::default()).unwrap_err();
    assert!(e.to_string().ends_with("nothing (0 bytes)"), "{e}");
    let png = encode(ImageFormat::Png);
    let e = decode(&png[..png.len() / 2], &DecodeOptions::default()).unwrap_err();
    assert!(
        matches!(&e, VisionError::Decode { format, .. } if format == "PNG"),
        "{e:?}"
    );
}

#[test]
fn images_over_the_pixel_limit_are_refused_before_decoding() {
    let e = decode(
        &encode(ImageFormat::Png),
        &DecodeOptions {
            max_pixels: 7,
            ..DecodeOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e,
        VisionError::TooLarge {
            width: 4,
            height: 2,
            pixels: 8,
            limit: 7
        }
    );
    // A 100000×100000 PNG header with no pixel data is refused from the header.
    let mut bomb = Vec::new();
    bomb.extend(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    bomb.extend(13u32.to_be_bytes());
    bomb.extend(&ihdr);
    bomb.extend(crc32(&ihdr).to_be_bytes());
    bomb.extend(0u32.to_be_bytes());
    bomb.extend(b"IDAT");
    bomb.extend(crc32(b"IDAT").to_be_bytes());
    let e = decode(&bomb, &DecodeOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            VisionError::TooLarge {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{e:?}"
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
