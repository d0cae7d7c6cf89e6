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

/// One source row through the horizontal pass: the window's columns.
fn horizontal_row(src: &[u8], t: &Taps, out: &mut [u8]) {
    for (xx, o) in out.chunks_exact_mut(3).enumerate() {
        let k = &t.weights[xx * t.ksize..xx * t.ksize + t.count[xx]];
        let mut acc = [HALF; 3];
        for (i, &kx) in k.iter().enumerate() {
            let p = (t.first[xx] + i) * 3;
            for c in 0..3 {
                acc[c] += i64::from(src[p + c]) * kx;
            }
        }
        for c in 0..3 {
            o[c] = clip8(acc[c]);
        }
    }
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

/// Multiply-adds the resize may spend per pixel of its source and its
/// output together. A square image costs about 6 (both passes, three
/// channels); only an image far thinner than the model's input, stretched
/// across it while shrunk along its length, costs more, and an attacker's
/// 1 × 40,000,000 PNG would cost 224 times its pixels. Refused instead.
pub(crate) const WORK_PER_PIXEL: u64 = 24;

/// The resize of `image` to `win` would cost more than [`WORK_PER_PIXEL`]
/// allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooCostly {
    /// Multiply-adds the resize needs.
    pub work: u64,
    /// Multiply-adds it may spend.
    pub budget: u64,
}

/// Resizes and crops in one go, computing only the window's pixels: the
/// same pixels as resizing the whole image and cropping (as Pillow-based
/// pipelines do).
///
/// Memory is bounded by the window whatever the source's shape: the
/// horizontal pass runs one source row at a time, only over the rows the
/// window's vertical taps reach, and each row is added into the window's
/// vertical accumulators at once. The vertical sum is integer arithmetic on
/// the 8-bit horizontal results, so adding rows as they come gives the bits
/// Pillow's two whole passes give. The work is checked before anything is
/// allocated.
pub(crate) fn resize_window(image: &RgbImage, win: Window) -> Result<RgbImage, TooCostly> {
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
    let across = (tw != w).then(|| taps(w, tw, x0, ow));
    let down = (th != h).then(|| taps(h, th, y0, oh));
    let (r0, r1) = match &down {
        Some(t) => (
            t.first.iter().copied().min().unwrap_or(0),
            t.first
                .iter()
                .zip(&t.count)
                .map(|(f, c)| f + c)
                .max()
                .unwrap_or(0),
        ),
        None => (y0, y0 + oh),
    };
    let per_row = across.as_ref().map_or(ow, |t| t.count.iter().sum::<usize>()) as u64;
    let per_column = down.as_ref().map_or(0, |t| t.count.iter().sum::<usize>()) as u64;
    let work = 3 * ((r1 - r0) as u64 * per_row + per_column * ow as u64);
    let budget = WORK_PER_PIXEL * (w as u64 * h as u64 + ow as u64 * oh as u64);
    if work > budget {
        return Err(TooCostly { work, budget });
    }

    let stride = ow * 3;
    let mut row = vec![0u8; stride];
    let mut out = vec![0u8; stride * oh];
    // The vertical pass's sums, one per output value.
    let mut acc = down.as_ref().map(|_| vec![HALF; stride * oh]).unwrap_or_default();
    // Output rows before `lo` take no source row at or after the current one.
    let mut lo = 0;
    for r in r0..r1 {
        let src = &image.pixels()[r * w * 3..(r + 1) * w * 3];
        match &across {
            Some(t) => horizontal_row(src, t, &mut row),
            None => row.copy_from_slice(&src[x0 * 3..(x0 + ow) * 3]),
        }
        let Some(t) = &down else {
            out[(r - y0) * stride..(r - y0 + 1) * stride].copy_from_slice(&row);
            continue;
        };
        while lo < oh && t.first[lo] + t.count[lo] <= r {
            lo += 1;
        }
        for yy in lo..oh {
            let first = t.first[yy];
            if first > r {
                break;
            }
            if r >= first + t.count[yy] {
                continue;
            }
            let k = t.weights[yy * t.ksize + (r - first)];
            for (a, &v) in acc[yy * stride..(yy + 1) * stride].iter_mut().zip(&row) {
                *a += i64::from(v) * k;
            }
        }
    }
    if down.is_some() {
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = clip8(*a);
        }
    }
    Ok(RgbImage::from_parts(win.width, win.height, out))
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
    fn a_thin_image_stretched_across_the_input_is_refused_before_allocating() {
        // 1 x 100,000 to 224 x 224: every source row would be stretched to
        // 224 columns, ~22 times more work than the pixels justify.
        let thin = RgbImage::from_parts(1, 100_000, vec![7; 300_000]);
        let win = Window {
            total_width: 224,
            total_height: 224,
            x: 0,
            y: 0,
            width: 224,
            height: 224,
        };
        let e = resize_window(&thin, win).unwrap_err();
        assert!(e.work > e.budget, "{e:?}");
        // The same pixels as a square are within budget.
        let square = RgbImage::from_parts(316, 316, vec![7; 316 * 316 * 3]);
        let r = resize_window(&square, win).unwrap();
        assert!(r.pixels().iter().all(|&p| p == 7));
    }

    #[test]
    fn only_the_rows_the_window_reaches_are_read() {
        // A tall image shrunk along its width and stretched along its
        // height: a window of 4 rows near the top reads a handful of source
        // rows, whatever the image's height. (Poisoning the rows outside
        // the window's taps shows it.)
        let (w, h) = (8usize, 10_000usize);
        let mut pixels = vec![255u8; w * h * 3];
        pixels[..w * 3 * 8].fill(10);
        let img = RgbImage::from_parts(w as u32, h as u32, pixels);
        let win = Window {
            total_width: 4,
            total_height: 40_000,
            x: 0,
            y: 8,
            width: 4,
            height: 4,
        };
        let r = resize_window(&img, win).unwrap();
        assert!(r.pixels().iter().all(|&p| p == 10), "{:?}", r.pixels());
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
        let r = resize_window(&img, win).unwrap();
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
        let full = resize_window(&img, whole).unwrap();
        let part = resize_window(
            &img,
            Window {
                x: 4,
                y: 1,
                width: 6,
                height: 2,
                ..whole
            },
        )
        .unwrap();
        for y in 0..2 {
            let a = &full.pixels()[((y + 1) * 13 + 4) * 3..((y + 1) * 13 + 10) * 3];
            let b = &part.pixels()[y * 6 * 3..(y + 1) * 6 * 3];
            assert_eq!(a, b, "row {y}");
        }
    }
}
