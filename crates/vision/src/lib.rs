//! Images in, tensors out, labels back: decoding (PNG, JPEG, WebP, GIF, BMP,
//! with EXIF orientation; or raw RGB/RGBA pixels as a canvas gives them),
//! classifier preprocessing as a model manifest describes it, and softmax /
//! top-k postprocessing.

mod decode;
mod postprocess;
mod preprocess;
mod resample;

pub use decode::{
    DEFAULT_MAX_IMAGES, DEFAULT_MAX_PIXELS, DEFAULT_MAX_REQUEST_PIXELS, DecodeOptions, PixelBudget,
    PixelFormat, RgbImage, decode, decode_within, encode_png, from_pixels, from_pixels_within,
};
pub use postprocess::{Labels, Scored, softmax, top_k};
pub use preprocess::{ChannelOrder, Crop, Layout, Normalize, Preprocessing, Resize};

/// What can go wrong between bytes and tensors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VisionError {
    /// The bytes are not in a supported image format.
    #[error("not a supported image (PNG, JPEG, WebP, GIF or BMP): the data starts with {head}")]
    UnknownFormat {
        /// The first bytes, in hex.
        head: String,
    },
    /// An image could not be encoded (to send it as a file).
    #[error("cannot encode the image as PNG: {reason}")]
    Encode {
        /// The encoder's reason.
        reason: String,
    },
    /// The format was recognised but the data is broken.
    #[error("cannot decode the {format} image: {reason}")]
    Decode {
        /// The format.
        format: String,
        /// The decoder's reason.
        reason: String,
    },
    /// Zero width or height.
    #[error("the image is empty ({width}x{height} pixels)")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// More pixels than allowed (a guard against decompression bombs).
    #[error("the image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// width × height.
        pixels: u64,
        /// The configured limit.
        limit: u64,
    },
    /// More images in one request than allowed.
    #[error("the request has {images} images, over the limit of {limit} a request")]
    TooManyImages {
        /// Images in the request.
        images: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A request's images together hold more pixels than allowed.
    #[error(
        "the request's images hold more than {limit} pixels together: {used} before a {width}x{height} image"
    )]
    RequestTooLarge {
        /// Width of the image that went over.
        width: u32,
        /// Height of the image that went over.
        height: u32,
        /// Pixels decoded before it.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A raw pixel buffer whose length does not match its dimensions.
    #[error("the pixel buffer has {got} bytes but {width}x{height} {format} needs {expected}")]
    BufferSize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The pixel format.
        format: PixelFormat,
        /// Bytes needed.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// An image whose resize to the model's input would cost far more than
    /// its pixel count suggests (an extreme aspect ratio); refused before
    /// any buffer for it is allocated.
    #[error("cannot resize the {width}x{height} image: {reason}")]
    Resize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Why.
        reason: String,
    },
    /// Preprocessing settings that cannot work.
    #[error("invalid preprocessing: {0}")]
    Config(String),
    /// A labels file that does not fit the model.
    #[error("invalid labels: {0}")]
    Labels(String),
}
