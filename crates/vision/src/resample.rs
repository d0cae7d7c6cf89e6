//! Antialiased bilinear resampling, computed the way Pillow's
//! `Image.resize(BILINEAR)` computes it.
//!
//! Written here rather than taken from a resize crate because the models'
//! reference preprocessing is Pillow's, and exactness matters: a resizer with
//! 16-bit coefficients (e.g. `fast_image_resize`) rounds a fifth of the
//! pixels one level differently, which moved EfficientNet-Lite0's logits by
//! 0.06 on the reference photo. This follows Pillow's method: a triangle
//! filter widened by the scale factor when shrinking, coefficients normalised
//! and turned into 22-bit fixed point, a horizontal pass then a vertical one
//! through an 8-bit intermediate, results rounded and clipped.

use crate::RgbImage;

/// Fixed-point precision of the coefficients (Pillow: 32 − 8 − 2).
const PRECISION_BITS: u32 = 22;

/// For each output position: the first input index, how many inputs, and
/// their fixed-point weights.
struct Taps {
    first: Vec<usize>,
    count: Vec<usize>,
    weights: Vec<i64>,
    ksize: usize,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Taps for output positions `start..start + count` of a resize from
/// `in_size` to `out_size`. Each position's taps depend only on the
/// position, so a window gives the same values as the whole resize.
fn taps(in_size: usize, out_size: usize, start: usize, count: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support is 1
    let ksize = support.ceil() as usize * 2 + 1;
    let mut t = Taps {
        first: Vec::with_capacity(count),
        count: Vec::with_capacity(count),
        weights: vec![0; count * ksize],
        ksize,
    };
    let mut k = vec![0f64; ksize];
    for (xx, pos) in (start..start + count).enumerate() {
        let center = (pos as f64 + 0.5) * scale;
        // Truncation toward zero, then clamping, as Pillow's C casts do.
        let first = ((center - support + 0.5) as i64).max(0) as usize;
        let last = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = last.saturating_sub(first).min(ksize);
        let mut sum = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(count) {
            *kx = triangle(((x + first) as f64 - center + 0.5) / filter_scale);
            sum += *kx;
        }
        let row = &mut t.weights[xx * ksize..xx * ksize + count];
        for (slot, kx) in row.iter_mut().zip(&k) {
            let w = if sum == 0.0 { 0.0 } else { kx / sum };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            *slot = if w < 0.0 {
                (fixed - 0.5) as i64
            } else {
                (fixed + 0.5) as i64
            };
        }
        t.first.push(first);
        t.count.push(count);
    }
    t
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i64 = 1 << (PRECISION_BITS - 1);

/// Columns `x0..x0 + out_w` of the horizontal pass to `total_w` columns.
fn horizontal(src: &[u8], w: usize, h: usize, total_w: usize, x0: usize, out_w: usize) -> Vec<u8> {
    let t = taps(w, total_w, x0, out_w);
    let mut out = vec![0u8; out_w * h * 3];
    for y in 0..h {
        let row = &src[y * w * 3..(y + 1) * w * 3];
        for xx in 0..out_w {
            let k = &t.weights[xx * t.ksize..xx * t.ksize + t.count[xx]];
            let mut acc = [HALF; 3];
            for (i, &kx) in k.iter().enumerate() {
                let p = (t.first[xx] + i) * 3;
                for c in 0..3 {
                    acc[c] += i64::from(row[p + c]) * kx;
                }
            }
            let o = (y * out_w + xx) * 3;
            for c in 0..3 {
                out[o + c] = clip8(acc[c]);
            }
        }
    }
    out
}

/// Rows `y0..y0 + out_h` of the vertical pass to `total_h` rows.
fn vertical(src: &[u8], w: usize, h: usize, total_h: usize, y0: usize, out_h: usize) -> Vec<u8> {
    let t = taps(h, total_h, y0, out_h);
    let mut out = vec![0u8; w * out_h * 3];
    let stride = w * 3;
    for yy in 0..out_h {
        let k = &t.weights[yy * t.ksize..yy * t.ksize + t.count[yy]];
        let first = t.first[yy];
        for x in 0..stride {
            let mut acc = HALF;
            for (i, &ky) in k.iter().enumerate() {
                acc += i64::from(src[(first + i) * stride + x]) * ky;
            }
            out[yy * stride + x] = clip8(acc);
        }
    }
    out
}

/// The part of a resized image to compute: `width`×`height` pixels from
/// (`x`, `y`) of the image resized to `total_width`×`total_height`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub total_width: u32,
    pub total_height: u32,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Resizes and crops in one go, computing only the window's pixels: the
/// same pixels as resizing the whole image and cropping (as Pillow-based
/// pipelines do), in memory bounded by the window and the source, whatever
/// the aspect ratio.
pub(crate) fn resize_window(image: &RgbImage, win: Window) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (tw, th) = (win.total_width as usize, win.total_height as usize);
    let (x0, y0, ow, oh) = (
        win.x as usize,
        win.y as usize,
        win.width as usize,
        win.height as usize,
    );
    // Like Pillow, a pass whose size does not change is skipped: the window
    // is then cut straight from the source.
    let cols = if tw != w {
        horizontal(image.pixels(), w, h, tw, x0, ow)
    } else {
        image
            .pixels()
            .chunks_exact(w * 3)
            .flat_map(|row| &row[x0 * 3..(x0 + ow) * 3])
            .copied()
            .collect()
    };
    let pixels = if th != h {
        vertical(&cols, ow, h, th, y0, oh)
    } else {
        cols[y0 * ow * 3..(y0 + oh) * ow * 3].to_vec()
    };
    RgbImage::from_parts(win.width, win.height, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(600, 385), (400, 256), (3, 7), (7, 3), (1, 5), (5, 1)] {
            let t = taps(i, o, 0, o);
            for xx in 0..o {
                let sum: i64 = t.weights[xx * t.ksize..xx * t.ksize + t.count[xx]].iter().sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= t.count[xx] as i64,
                    "{i}->{o} at {xx}: {sum}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let img = RgbImage::from_parts(5, 3, [10u8, 200, 77].repeat(15));
        let win = Window {
            total_width: 11,
            total_height: 2,
            x: 0,
            y: 0,
            width: 11,
            height: 2,
        };
        let r = resize_window(&img, win);
        assert!(r.pixels().chunks_exact(3).all(|p| p == [10, 200, 77]));
    }

    #[test]
    fn a_window_is_the_crop_of_the_whole_resize() {
        let img = RgbImage::from_parts(7, 5, (0..105).map(|i| (i * 37 % 251) as u8).collect());
        let whole = Window {
            total_width: 13,
            total_height: 3,
            x: 0,
            y: 0,
            width: 13,
            height: 3,
        };
        let full = resize_window(&img, whole);
        let part = resize_window(
            &img,
            Window {
                x: 4,
                y: 1,
                width: 6,
                height: 2,
                ..whole
            },
        );
        for y in 0..2 {
            let a = &full.pixels()[((y + 1) * 13 + 4) * 3..((y + 1) * 13 + 10) * 3];
            let b = &part.pixels()[y * 6 * 3..(y + 1) * 6 * 3];
            assert_eq!(a, b, "row {y}");
        }
    }
}
