//! Classifier preprocessing: resize, crop, normalise, lay out as a tensor.

use crate::resample::{WORK_PER_PIXEL, Window, resize_window};
use crate::{RgbImage, VisionError};
use edgeserve_protocol::Tensor;
use serde::{Deserialize, Serialize};

/// How the image is scaled before cropping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resize {
    /// Scale so the shorter side is `size` pixels, keeping the aspect ratio
    /// (the other side is rounded to the nearest pixel).
    ShorterSide {
        /// The shorter side's length after resizing.
        size: u32,
    },
    /// Scale to exactly the model's input size, ignoring aspect ratio.
    Exact,
}

/// Which part of the resized image the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crop {
    /// The centre, input-sized (left = (W − w) / 2, top = (H − h) / 2,
    /// rounded down).
    Center,
    /// No crop: the resize must already give the input size.
    None,
}

/// How 0–255 pixel values become model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalize {
    /// `(pixel − mean[c]) / std[c]`.
    MeanStd {
        /// Per-channel mean, in the model's channel order.
        mean: [f32; 3],
        /// Per-channel standard deviation.
        std: [f32; 3],
    },
    /// `pixel · scale + offset` (e.g. scale 1/255 for 0–1 inputs).
    ScaleOffset {
        /// Multiplier.
        scale: f32,
        /// Added after scaling.
        offset: f32,
    },
}

/// The channel order the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (Caffe-style models).
    Bgr,
}

/// The tensor layout the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `[N, C, H, W]` (PyTorch/ONNX exports).
    Nchw,
    /// `[N, H, W, C]` (TensorFlow).
    Nhwc,
}

/// Everything between an RGB image and a model input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Model input width.
    pub width: u32,
    /// Model input height.
    pub height: u32,
    /// The resize step (antialiased bilinear, as PIL's `BILINEAR`).
    pub resize: Resize,
    /// The crop step.
    pub crop: Crop,
    /// The normalisation.
    pub normalize: Normalize,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Tensor layout.
    pub layout: Layout,
}

impl Preprocessing {
    /// Checks that the settings can produce the input size.
    pub fn validate(&self) -> Result<(), VisionError> {
        let bad = |m: String| Err(VisionError::Config(m));
        if self.width == 0 || self.height == 0 || self.width > 16_384 || self.height > 16_384 {
            return bad(format!(
                "input size {}x{} must be within 1..=16384",
                self.width, self.height
            ));
        }
        if let Resize::ShorterSide { size } = self.resize {
            if size < self.width.min(self.height) || size > 16_384 {
                return bad(format!(
                    "resize.size {size} must be at least the input's shorter side {} and at most 16384",
                    self.width.min(self.height)
                ));
            }
            if self.crop == Crop::None && self.width != self.height {
                return bad("resize shorter_side without a crop needs a square input".into());
            }
        }
        match self.normalize {
            Normalize::MeanStd { std, mean } => {
                if std.iter().any(|s| !s.is_finite() || *s == 0.0) || mean.iter().any(|m| !m.is_finite()) {
                    return bad(format!(
                        "normalize mean {mean:?} / std {std:?} must be finite, std non-zero"
                    ));
                }
            }
            Normalize::ScaleOffset { scale, offset } => {
                if !scale.is_finite() || !offset.is_finite() {
                    return bad(format!(
                        "normalize scale {scale} / offset {offset} must be finite"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The size the whole image is resized to, before the crop; `None`
    /// when a side would not fit 32 bits (an image thousands of times
    /// longer than it is wide).
    fn resized_size(&self, w: u32, h: u32) -> Option<(u32, u32)> {
        match self.resize {
            Resize::Exact => Some((self.width, self.height)),
            Resize::ShorterSide { size } => {
                let scale = f64::from(size) / f64::from(w.min(h));
                // round(), as PIL-based pipelines compute the other side.
                let side = |v: u32| u32::try_from((f64::from(v) * scale).round() as u64).ok();
                let (sw, sh) = if w <= h {
                    (size, side(h)?)
                } else {
                    (side(w)?, size)
                };
                // Never smaller than the crop: a non-square input may need
                // more than `size` on one side.
                Some((sw.max(self.width), sh.max(self.height)))
            }
        }
    }

    /// Resizes and crops to the input size, 8-bit RGB. Refuses, before
    /// allocating, an image whose resize would cost more than a few dozen
    /// multiply-adds per pixel ([`VisionError::Resize`]).
    pub fn resize_and_crop(&self, image: &RgbImage) -> Result<RgbImage, VisionError> {
        self.validate()?;
        let (w, h) = (image.width(), image.height());
        let refuse = |reason: String| VisionError::Resize {
            width: w,
            height: h,
            reason,
        };
        let (rw, rh) = self.resized_size(w, h).ok_or_else(|| {
            refuse(format!(
                "scaling its shorter side to {} makes the other side longer than {} pixels",
                match self.resize {
                    Resize::ShorterSide { size } => size,
                    Resize::Exact => self.width,
                },
                u32::MAX
            ))
        })?;
        if self.crop == Crop::None && (rw, rh) != (self.width, self.height) {
            return Err(VisionError::Config(format!(
                "resized to {rw}x{rh} but the input is {}x{} and there is no crop",
                self.width, self.height
            )));
        }
        // `resized_size` never goes below the input size, so these do not
        // underflow.
        let (x, y) = match self.crop {
            Crop::Center => ((rw - self.width) / 2, (rh - self.height) / 2),
            Crop::None => (0, 0),
        };
        let window = Window {
            total_width: rw,
            total_height: rh,
            x,
            y,
            width: self.width,
            height: self.height,
        };
        resize_window(image, window).map_err(|c| {
            refuse(format!(
                "resizing it to {rw}x{rh} needs {} multiply-adds, over the {} allowed for its size \
                 ({WORK_PER_PIXEL} per pixel of the image and of the model's input)",
                c.work, c.budget
            ))
        })
    }

    /// Writes one image's normalised values into `out` (one batch item, in
    /// the layout and channel order of the model).
    fn write_item(&self, image: &RgbImage, out: &mut [f32]) {
        let (scale, offset) = match self.normalize {
            Normalize::MeanStd { mean, std } => (
                [1.0 / std[0], 1.0 / std[1], 1.0 / std[2]],
                [-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]],
            ),
            Normalize::ScaleOffset { scale, offset } => ([scale; 3], [offset; 3]),
        };
        let plane = (self.width * self.height) as usize;
        for (i, px) in image.pixels().chunks_exact(3).enumerate() {
            for c in 0..3 {
                // Model channel c takes source channel c (RGB) or 2 − c (BGR).
                let src = match self.channel_order {
                    ChannelOrder::Rgb => px[c],
                    ChannelOrder::Bgr => px[2 - c],
                };
                let v = match self.normalize {
                    // Division, not multiplication by 1/std, so the values are
                    // bit-identical to the usual `(x - mean) / std`.
                    Normalize::MeanStd { mean, std } => (f32::from(src) - mean[c]) / std[c],
                    Normalize::ScaleOffset { .. } => f32::from(src) * scale[c] + offset[c],
                };
                let at = match self.layout {
                    Layout::Nchw => c * plane + i,
                    Layout::Nhwc => i * 3 + c,
                };
                out[at] = v;
            }
        }
    }

    /// How many values one image takes in the input tensor.
    pub fn item_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    /// The input tensor's shape for a batch of `n` images.
    pub fn batch_shape(&self, n: usize) -> Vec<usize> {
        let (h, w) = (self.height as usize, self.width as usize);
        match self.layout {
            Layout::Nchw => vec![n, 3, h, w],
            Layout::Nhwc => vec![n, h, w, 3],
        }
    }

    /// Preprocesses one image into its batch slot `out` ([`Self::item_len`]
    /// values), so that a batch can be filled one decoded image at a time
    /// and no more than one is held at once.
    pub fn write_into(&self, image: &RgbImage, out: &mut [f32]) -> Result<(), VisionError> {
        self.validate()?;
        if out.len() != self.item_len() {
            return Err(VisionError::Config(format!(
                "a batch slot of {} values for a {}x{}x3 input",
                out.len(),
                self.width,
                self.height
            )));
        }
        if (image.width(), image.height()) == (self.width, self.height) && self.resize == Resize::Exact {
            self.write_item(image, out);
        } else {
            self.write_item(&self.resize_and_crop(image)?, out);
        }
        Ok(())
    }

    /// A batch tensor `[N, C, H, W]` or `[N, H, W, C]` for the images.
    pub fn to_tensor(&self, images: &[RgbImage]) -> Result<Tensor, VisionError> {
        self.validate()?;
        let item = self.item_len();
        let mut data = vec![0f32; item * images.len()];
        for (image, out) in images.iter().zip(data.chunks_exact_mut(item)) {
            self.write_into(image, out)?;
        }
        Tensor::from_vec(self.batch_shape(images.len()), data).map_err(|e| VisionError::Config(e.to_string()))
    }
}
