//! Preprocessing against the exact tensors of `shared/fixtures/inputs/`
//! (made with PIL: antialiased bilinear, centre crop, (x − 127) / 128, NCHW).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_testkit::shared;
use edgeserve_vision::{ChannelOrder, Crop, DecodeOptions, Layout, Normalize, Preprocessing, Resize, decode};

fn efficientnet(size: u32) -> Preprocessing {
    Preprocessing {
        width: size,
        height: size,
        resize: Resize::ShorterSide {
            size: (f64::from(size) * 256.0 / 224.0).round() as u32,
        },
        crop: Crop::Center,
        normalize: Normalize::MeanStd {
            mean: [127.0; 3],
            std: [128.0; 3],
        },
        channel_order: ChannelOrder::Rgb,
        layout: Layout::Nchw,
    }
}

#[test]
fn matches_the_reference_tensors() {
    for name in ["chelsea", "coffee"] {
        for size in [224u32, 260] {
            let img = decode(
                &shared(&format!("fixtures/images/{name}_orig.png")),
                &DecodeOptions::default(),
            )
            .unwrap();
            let t = efficientnet(size).to_tensor(&[img]).unwrap();
            assert_eq!(t.shape(), &[1, 3, size as usize, size as usize]);
            let want: Vec<f32> = shared(&format!("fixtures/inputs/{name}_{size}_nchw_f32le.bin"))
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let got = t.as_slice::<f32>().unwrap();
            let diffs: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
            let max = diffs.iter().copied().fold(0.0, f32::max);
            let exact = diffs.iter().filter(|d| **d == 0.0).count();
            eprintln!(
                "{name} {size}: max abs diff {max} ({:.1}% exact)",
                100.0 * exact as f64 / diffs.len() as f64
            );
            // The resampler follows Pillow's arithmetic, so the tensors are
            // the reference's to the bit.
            assert_eq!(
                max,
                0.0,
                "{name} {size}: max abs diff {max}, {exact} of {} exact",
                diffs.len()
            );
        }
    }
}

#[test]
fn non_square_inputs_and_tiny_images_crop_without_underflow() {
    use edgeserve_vision::{PixelFormat, from_pixels};
    let pre = Preprocessing {
        width: 320,
        height: 240,
        resize: Resize::ShorterSide { size: 256 },
        crop: Crop::Center,
        normalize: Normalize::ScaleOffset {
            scale: 1.0 / 255.0,
            offset: 0.0,
        },
        channel_order: ChannelOrder::Bgr,
        layout: Layout::Nhwc,
    };
    for (w, h) in [(100, 400), (400, 100), (1, 1), (3, 2000)] {
        let img = from_pixels(
            w,
            h,
            PixelFormat::Rgb8,
            &vec![200u8; (w * h * 3) as usize],
            &DecodeOptions::default(),
        )
        .unwrap();
        let t = pre.to_tensor(&[img]).unwrap();
        assert_eq!(t.shape(), &[1, 240, 320, 3], "{w}x{h}");
        let v = t.as_slice::<f32>().unwrap();
        assert!(
            v.iter().all(|x| (x - 200.0 / 255.0).abs() < 1e-6),
            "{w}x{h}: a flat image stays flat"
        );
    }
}
