//! Decoding encoded images and accepting raw pixel buffers.

use crate::VisionError;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::fmt;
use std::io::Cursor;

/// Default pixel limit: 40 megapixels (e.g. 8000×5000). Decoding needs about
/// 4 bytes a pixel, so this keeps one image under ~160 MB.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// Default number of images one request may carry.
pub const DEFAULT_MAX_IMAGES: usize = 64;

/// Default pixels one request may decode across its images: five images at
/// the per-image limit. Images are decoded one at a time, so this bounds a
/// request's decoding time, not its memory.
pub const DEFAULT_MAX_REQUEST_PIXELS: u64 = 5 * DEFAULT_MAX_PIXELS;

/// Limits for decoding untrusted images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Largest width × height of one image.
    pub max_pixels: u64,
    /// Most images in one request.
    pub max_images: usize,
    /// Most pixels one request decodes across its images (see
    /// [`PixelBudget`]).
    pub max_request_pixels: u64,
    /// Most images preprocessed into one model run; a request with more
    /// runs in chunks of this many. A model's activations grow with its
    /// batch (EfficientNet-Lite0 holds ~6 MB an image at its widest), so
    /// this bounds what the run costs where memory is small (a Worker's
    /// 128 MB).
    pub max_images_per_run: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_images: DEFAULT_MAX_IMAGES,
            max_request_pixels: DEFAULT_MAX_REQUEST_PIXELS,
            max_images_per_run: DEFAULT_MAX_IMAGES,
        }
    }
}

impl DecodeOptions {
    /// Checks a request's image count against [`DecodeOptions::max_images`]
    /// before anything is decoded.
    pub fn check_count(&self, images: usize) -> Result<(), VisionError> {
        if images > self.max_images {
            return Err(VisionError::TooManyImages {
                images,
                limit: self.max_images,
            });
        }
        Ok(())
    }

    /// A fresh budget of [`DecodeOptions::max_request_pixels`].
    pub fn budget(&self) -> PixelBudget {
        PixelBudget {
            limit: self.max_request_pixels,
            used: 0,
        }
    }
}

/// The pixels one request may still decode: each image's size is charged
/// from its header, before its pixels are allocated.
#[derive(Debug, Clone)]
pub struct PixelBudget {
    limit: u64,
    used: u64,
}

impl PixelBudget {
    /// No limit (one image, already bounded by its own limit).
    pub fn unlimited() -> PixelBudget {
        PixelBudget {
            limit: u64::MAX,
            used: 0,
        }
    }

    fn charge(&mut self, width: u32, height: u32) -> Result<(), VisionError> {
        let pixels = u64::from(width) * u64::from(height);
        let total = self.used.saturating_add(pixels);
        if total > self.limit {
            return Err(VisionError::RequestTooLarge {
                width,
                height,
                used: self.used,
                limit: self.limit,
            });
        }
        self.used = total;
        Ok(())
    }
}

/// An 8-bit RGB image, rows top to bottom, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl RgbImage {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `width * height * 3` bytes, RGB interleaved.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    pub(crate) fn from_parts(width: u32, height: u32, pixels: Vec<u8>) -> Self {
        RgbImage {
            width,
            height,
            pixels,
        }
    }
}

/// The layout of a raw pixel buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 3 bytes a pixel.
    Rgb8,
    /// 4 bytes a pixel, as a canvas `ImageData` holds them; alpha is dropped
    /// (not blended: a classifier sees the colour the pixel has).
    Rgba8,
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Rgb8 => "RGB8",
            PixelFormat::Rgba8 => "RGBA8",
        })
    }
}

fn check_size(width: u32, height: u32, opts: &DecodeOptions) -> Result<(), VisionError> {
    if width == 0 || height == 0 {
        return Err(VisionError::Empty { width, height });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > opts.max_pixels {
        return Err(VisionError::TooLarge {
            width,
            height,
            pixels,
            limit: opts.max_pixels,
        });
    }
    Ok(())
}

/// An image from raw pixels (e.g. a canvas `ImageData`).
pub fn from_pixels(
    width: u32,
    height: u32,
    format: PixelFormat,
    data: &[u8],
    opts: &DecodeOptions,
) -> Result<RgbImage, VisionError> {
    from_pixels_within(width, height, format, data, opts, &mut PixelBudget::unlimited())
}

/// [`from_pixels`], charged to a request's [`PixelBudget`].
pub fn from_pixels_within(
    width: u32,
    height: u32,
    format: PixelFormat,
    data: &[u8],
    opts: &DecodeOptions,
    budget: &mut PixelBudget,
) -> Result<RgbImage, VisionError> {
    check_size(width, height, opts)?;
    let channels: u64 = match format {
        PixelFormat::Rgb8 => 3,
        PixelFormat::Rgba8 => 4,
    };
    let expected = u64::from(width) * u64::from(height) * channels;
    if data.len() as u64 != expected {
        return Err(VisionError::BufferSize {
            width,
            height,
            format,
            expected,
            got: data.len() as u64,
        });
    }
    budget.charge(width, height)?;
    let pixels = match format {
        PixelFormat::Rgb8 => data.to_vec(),
        PixelFormat::Rgba8 => data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
    };
    Ok(RgbImage {
        width,
        height,
        pixels,
    })
}

/// The image as a PNG file: lossless, so a remote model that takes encoded
/// images sees exactly these pixels.
pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>, VisionError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        &image.pixels,
        image.width,
        image.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| VisionError::Encode {
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Refuses a JPEG whose data ends before its end-of-image marker. The
/// decoder would fill the missing rows with grey and classify that, a
/// silent change of what the user sent; TF Serving's `DecodeJpeg` refuses
/// such files too (unless asked to recover them). Only the segment
/// lengths and markers are walked, so this costs nothing next to decoding;
/// a stream that is malformed in another way is left to the decoder.
fn jpeg_reaches_its_end(bytes: &[u8]) -> Result<(), String> {
    let truncated = |at: usize| {
        Err(format!(
            "the data ends after {} bytes, before the image does (no end-of-image marker): the file is truncated",
            at.min(bytes.len())
        ))
    };
    let mut i = 2; // after SOI, which the format guess has seen
    loop {
        // A marker: 0xFF (any number of them as fill), then its code.
        if i >= bytes.len() {
            return truncated(i);
        }
        if bytes[i] != 0xFF {
            return Ok(());
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = bytes.get(i) else {
            return truncated(i);
        };
        i += 1;
        match code {
            0xD9 => return Ok(()),
            // Markers without a length: TEM and the restart markers.
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                let Some(len) = bytes.get(i..i + 2) else {
                    return truncated(i);
                };
                i += usize::from(u16::from_be_bytes([len[0], len[1]]));
                if i > bytes.len() {
                    return truncated(i);
                }
                if code == 0xDA {
                    // The scan's entropy-coded data runs to the next marker:
                    // 0xFF followed by anything but a stuffed 0x00 or a restart.
                    loop {
                        match bytes.get(i..i + 2) {
                            None => return truncated(bytes.len()),
                            Some([0xFF, 0x00 | 0xD0..=0xD7]) => i += 2,
                            Some([0xFF, _]) => break,
                            Some(_) => i += 1,
                        }
                    }
                }
            }
        }
    }
}

fn format_name(f: ImageFormat) -> String {
    format!("{f:?}").to_uppercase()
}

/// Decodes PNG, JPEG, WebP, GIF (first frame) or BMP bytes to RGB, turned
/// upright as its EXIF orientation says, refusing images over the pixel
/// limit before decoding them.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<RgbImage, VisionError> {
    decode_within(bytes, opts, &mut PixelBudget::unlimited())
}

/// [`decode`], charged to a request's [`PixelBudget`] from the header,
/// before the pixels are allocated.
pub fn decode_within(
    bytes: &[u8],
    opts: &DecodeOptions,
    budget: &mut PixelBudget,
) -> Result<RgbImage, VisionError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::Decode {
            format: "unknown".into(),
            reason: e.to_string(),
        })?;
    let format = match reader.format() {
        Some(
            f @ (ImageFormat::Png
            | ImageFormat::Jpeg
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp),
        ) => f,
        _ => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            return Err(VisionError::UnknownFormat {
                head: if head.is_empty() {
                    "nothing (0 bytes)".into()
                } else {
                    head.join(" ")
                },
            });
        }
    };
    let broken = |e: image::ImageError| VisionError::Decode {
        format: format_name(format),
        reason: e.to_string(),
    };
    if format == ImageFormat::Jpeg {
        jpeg_reaches_its_end(bytes).map_err(|reason| VisionError::Decode {
            format: format_name(format),
            reason,
        })?;
    }
    let mut decoder = reader.into_decoder().map_err(broken)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, opts)?;
    budget.charge(width, height)?;
    let mut limits = Limits::default();
    // Header sizes are checked above; this bounds what a lying header or a
    // format's extra buffers can make the decoder allocate.
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(1 << 20));
    decoder.set_limits(limits).map_err(broken)?;
    let orientation = decoder.orientation().map_err(broken)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(broken)?;
    image.apply_orientation(orientation);
    let rgb = image.into_rgb8();
    let (width, height) = rgb.dimensions();
    Ok(RgbImage {
        width,
        height,
        pixels: rgb.into_raw(),
    })
}
