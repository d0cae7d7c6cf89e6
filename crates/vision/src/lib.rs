//! Images in, tensors out, labels back: decoding (PNG, JPEG, WebP, GIF, BMP,
//! with EXIF orientation; or raw RGB/RGBA pixels as a canvas gives them),
//! classifier preprocessing as a model manifest describes it, and softmax /
//! top-k postprocessing.

mod decode;
mod postprocess;
mod preprocess;
mod resample;

pub use decode::{DEFAULT_MAX_PIXELS, DecodeOptions, PixelFormat, RgbImage, decode, encode_png, from_pixels};
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
    /// Preprocessing settings that cannot work.
    #[error("invalid preprocessing: {0}")]
    Config(String),
    /// A labels file that does not fit the model.
    #[error("invalid labels: {0}")]
    Labels(String),
}
