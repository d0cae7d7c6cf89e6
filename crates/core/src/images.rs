//! Images as the caller gives them, decoded and preprocessed one at a time
//! into a batch under the request's pixel budget.

use crate::report::*;
use edgeserve_engine::EngineError;
use edgeserve_vision::{DecodeOptions, PixelBudget, PixelFormat, Preprocessing, RgbImage, VisionError};
use web_time::Instant;

/// An image to classify.
#[derive(Debug, Clone, Copy)]
pub enum ImageInput<'a> {
    /// PNG, JPEG, WebP, GIF or BMP bytes.
    Encoded(&'a [u8]),
    /// Raw pixels, e.g. a canvas `ImageData`.
    Pixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Pixel layout.
        format: PixelFormat,
        /// The pixels, rows top to bottom.
        data: &'a [u8],
    },
}

impl ImageInput<'_> {
    /// Whether `other` is this very image: the same bytes in memory, not
    /// merely equal ones (a comparison that costs nothing).
    pub(crate) fn same_as(&self, other: &ImageInput<'_>) -> bool {
        let same = |a: &[u8], b: &[u8]| std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len();
        match (self, other) {
            (ImageInput::Encoded(a), ImageInput::Encoded(b)) => same(a, b),
            (
                ImageInput::Pixels {
                    width,
                    height,
                    format,
                    data,
                },
                ImageInput::Pixels {
                    width: w,
                    height: h,
                    format: f,
                    data: d,
                },
            ) => (width, height, format) == (w, h, f) && same(data, d),
            _ => false,
        }
    }
}

pub(crate) fn decode_image(
    image: &ImageInput<'_>,
    options: &DecodeOptions,
    budget: &mut PixelBudget,
) -> Result<RgbImage, VisionError> {
    match *image {
        ImageInput::Encoded(bytes) => edgeserve_vision::decode_within(bytes, options, budget),
        ImageInput::Pixels {
            width,
            height,
            format,
            data,
        } => edgeserve_vision::from_pixels_within(width, height, format, data, options, budget),
    }
}

/// The batch's values for `images`, in the model's layout, with the time
/// spent decoding and preprocessing; `refuse` words a failure of image `i`.
///
/// Each image is decoded, preprocessed into its slot of the batch and
/// dropped before the next is decoded, so a request holds one decoded image
/// at a time whatever its count; every image's pixels are charged to the
/// request's budget from its header, before they are allocated, and the
/// count is checked before anything is. An image given again (the same
/// bytes in memory, as a classify request's context image is for each
/// example) is decoded once and its slot copied. The request's
/// [`cancel`](edgeserve_engine::cancel) scope is checked between images.
pub(crate) fn preprocess_images(
    pre: &Preprocessing,
    options: &DecodeOptions,
    images: &[ImageInput<'_>],
    refuse: impl Fn(usize, VisionError) -> EngineError,
) -> Result<(Vec<f32>, Timings), EngineError> {
    options.check_count(images.len())?;
    let mut timings = Timings::default();
    let item = pre.item_len();
    let mut data = vec![0f32; item * images.len()];
    let mut budget = options.budget();
    for (i, image) in images.iter().enumerate() {
        edgeserve_engine::cancel::checkpoint()?;
        if let Some(j) = images[..i].iter().position(|earlier| earlier.same_as(image)) {
            data.copy_within(j * item..(j + 1) * item, i * item);
            continue;
        }
        let t = Instant::now();
        let decoded = decode_image(image, options, &mut budget).map_err(|e| refuse(i, e))?;
        timings.decode_ms += ms_since(t);
        let t = Instant::now();
        pre.write_into(&decoded, &mut data[i * item..(i + 1) * item])
            .map_err(|e| refuse(i, e))?;
        timings.preprocess_ms += ms_since(t);
    }
    Ok((data, timings))
}
