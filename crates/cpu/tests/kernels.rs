//! edgeserve's depthwise, pointwise and matrix–vector kernels against
//! tract's own, op by op: tiny ONNX graphs (one `Conv`, optionally followed
//! by `Clip`, or a classifier's `Gemm`) built here, run with edgeserve's
//! kernels in NCHW (`ConvLayout::AsModel`) and
//! in blocks of eight channels (`ConvLayout::Blocked`, the default), and
//! compared with `ConvLayout::ChannelsLast` (every convolution on tract).
//! Natively and, built for wasm32, under Node (`./x test` runs the simd128
//! and the relaxed-SIMD builds), where the blocked kernels take their wasm
//! shapes and the NCHW form is tract's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{ConvLayout, CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::{Tensor, TensorData};
use edgeserve_testkit::onnx::{Graph, a_i, a_ints, floats, int64s, node};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// One convolution to check: depthwise, or one group when `out_channels`
/// is set (pointwise when 1×1, dense otherwise).
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    channels: usize,
    out_channels: Option<usize>,
    h: usize,
    w: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    /// ONNX order: top, left, bottom, right.
    pads: [usize; 4],
    /// `Clip(min, max)` after the convolution.
    clip: Option<(f32, f32)>,
}

/// Deterministic values in [-1, 1): narrower than `testkit::onnx::values`,
/// which these kernels' tolerances were set against.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The case as an ONNX graph: `x` → `Conv` (→ `Clip`) → `y`.
fn graph(c: &Case) -> Graph {
    let (kh, kw) = c.kernel;
    let (group, cout) = match c.out_channels {
        Some(cout) => (1, cout),
        None => (c.channels, c.channels),
    };
    let clipped = c.clip.is_some();
    let mut nodes = vec![node(
        "Conv",
        &["x", "k", "b"],
        if clipped { "conv" } else { "y" },
        vec![
            a_i("group", group as i64),
            a_ints("kernel_shape", &[kh as i64, kw as i64]),
            a_ints("strides", &[c.stride.0 as i64, c.stride.1 as i64]),
            a_ints("pads", &c.pads.map(|p| p as i64)),
        ],
    )];
    let mut inits = vec![
        floats(
            "k",
            &[cout, c.channels / group, kh, kw],
            values(cout * c.channels / group * kh * kw, 1),
        ),
        floats("b", &[cout], values(cout, 2)),
    ];
    if let Some((lo, hi)) = c.clip {
        inits.push(floats("lo", &[], vec![lo]));
        inits.push(floats("hi", &[], vec![hi]));
        nodes.push(node("Clip", &["conv", "lo", "hi"], "y", vec![]));
    }
    let (out_h, out_w) = out_size(c);
    let mut g = Graph::new(nodes, vec![("x", vec![c.batch, c.channels, c.h, c.w])]);
    g.inits = inits;
    g.outputs = vec![("y".into(), Some(vec![c.batch, cout, out_h, out_w]))];
    g
}

fn model(c: &Case) -> Vec<u8> {
    graph(c).bytes()
}

/// Pixels of one run of the blocked 1×1 kernel (`pointwise::PIXELS`).
const POINTWISE_RUN: usize = if cfg!(target_arch = "wasm32") { 5 } else { 6 };

/// Whether `ConvLayout::AsModel` runs edgeserve's NCHW kernels (natively)
/// or leaves every convolution to tract (wasm; `Blocked` puts them in for
/// what the blocked kernels do not take, in wasm too).
const NCHW_KERNELS: bool = cfg!(not(target_arch = "wasm32"));

/// Whether `c` runs on the blocked kernels (`ConvLayout::Blocked`): whole
/// blocks of eight channels, runs of pixels that fit the output, and a CPU
/// with AVX2 and FMA, or wasm SIMD (every wasm build has it).
fn blocked_applies(c: &Case) -> bool {
    let (out_h, out_w) = out_size(c);
    #[cfg(target_arch = "x86_64")]
    let cpu = avx2_fma();
    #[cfg(target_arch = "wasm32")]
    let cpu = true;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "wasm32")))]
    let cpu = false;
    match c.out_channels {
        // Dense: few input channels, strides of 1 or 2, rows of 8.
        Some(o) if c.kernel != (1, 1) => {
            cpu && c.channels <= 4 && o.is_multiple_of(8) && out_w >= 8 && c.stride.1 <= 2
        }
        Some(o) => {
            cpu && c.channels.is_multiple_of(8) && o.is_multiple_of(8) && out_h * out_w >= POINTWISE_RUN
        }
        None => cpu && c.channels.is_multiple_of(8) && out_w >= 4 && c.kernel.1 <= 16,
    }
}

/// Whether the CPU is x86_64 with AVX2 and FMA, which the blocked kernels
/// need natively and the native-only ones (the matrix–vector product, the
/// fused expansion) need at all.
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn out_size(c: &Case) -> (usize, usize) {
    let [top, left, bottom, right] = c.pads;
    // Saturating: an empty image with less padding than the kernel has
    // no valid output size, and tract decides what it makes of it.
    (
        (c.h + top + bottom).saturating_sub(c.kernel.0) / c.stride.0 + 1,
        (c.w + left + right).saturating_sub(c.kernel.1) / c.stride.1 + 1,
    )
}

/// Runs the model and names the operators that ran.
fn run(bytes: &[u8], layout: ConvLayout, input: &Tensor) -> (Tensor, Vec<String>) {
    let e = CpuEngine::load(
        bytes,
        &CpuOptions {
            layout,
            ..CpuOptions::default()
        },
    )
    .unwrap();
    let mut inputs = NamedTensors::new();
    inputs.insert("x".into(), input.clone());
    let ops: Vec<String> = e
        .profile(inputs.clone())
        .unwrap()
        .into_iter()
        .map(|o| o.op)
        .collect();
    (e.run_blocking(inputs).unwrap().remove("y").unwrap(), ops)
}

fn check(c: Case) {
    check_model(c, &model(&c));
}

/// Runs `bytes`, a model shaped like `c`, every way and compares.
fn check_model(c: Case, bytes: &[u8]) {
    let n = c.batch * c.channels * c.h * c.w;
    // Scaled so that a clip to [0, 6] cuts on both sides.
    let x: Vec<f32> = values(n, 3).iter().map(|v| v * 8.0).collect();
    let input = Tensor::new(vec![c.batch, c.channels, c.h, c.w], TensorData::Float(x)).unwrap();
    let blocked = blocked_applies(&c);
    let dense = c.out_channels.is_some() && c.kernel != (1, 1);
    let kernel = match c.out_channels {
        Some(_) if dense => "EdgeserveDenseConv",
        Some(_) => "EdgeservePointwiseConv",
        None => "EdgeserveDepthwiseConv",
    };
    let (tract, ops) = run(bytes, ConvLayout::ChannelsLast, &input);
    assert!(
        !ops.iter().any(|o| o.starts_with("Edgeserve")),
        "tract alone ran {ops:?}"
    );
    for layout in [ConvLayout::AsModel, ConvLayout::Blocked] {
        let (ours, ops) = run(bytes, layout, &input);
        // The comparison is between two kernels, not tract and itself, and
        // the blocked layout ran where it should: into it (but for the
        // dense kernel, which reads NCHW) and back.
        let blocked = blocked && layout == ConvLayout::Blocked;
        let ran = |name: &str| ops.iter().any(|o| o == name);
        assert_eq!(
            ran(kernel),
            (!dense && (NCHW_KERNELS || layout == ConvLayout::Blocked)) || blocked,
            "{c:?} {layout:?} ran {ops:?}"
        );
        assert_eq!(
            ran("EdgeserveFromBlocked"),
            blocked,
            "{c:?} {layout:?} ran {ops:?}"
        );
        assert_eq!(
            ran("EdgeserveToBlocked"),
            blocked && !dense,
            "{c:?} {layout:?} ran {ops:?}"
        );
        assert_eq!(ours.shape(), tract.shape(), "{c:?}");
        let (TensorData::Float(a), TensorData::Float(b)) = (ours.data(), tract.data()) else {
            panic!("{c:?}: not f32 outputs")
        };
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{c:?} {layout:?}: max abs diff {worst}");
        if let Some((lo, hi)) = c.clip {
            assert!(a.iter().all(|v| (lo..=hi).contains(v)), "{c:?}: clip not applied");
            let reached = a.contains(&lo) && (hi > 100.0 || a.contains(&hi));
            assert!(reached, "{c:?}: the test data should reach the bounds");
        }
    }
}

const BASE: Case = Case {
    batch: 1,
    channels: 3,
    out_channels: None,
    h: 9,
    w: 11,
    kernel: (3, 3),
    stride: (1, 1),
    pads: [1, 1, 1, 1],
    clip: Some((0.0, 6.0)),
};

#[test]
fn stride_1_same_padding_with_relu6() {
    check(BASE);
    check(Case {
        kernel: (5, 5),
        pads: [2, 2, 2, 2],
        ..BASE
    });
}

#[test]
fn stride_2_with_tensorflow_style_asymmetric_padding() {
    // 8 channels: the blocked layout too.
    for channels in [3, 8] {
        // What EfficientNet-Lite exports: pad only after, for an even input.
        check(Case {
            channels,
            h: 10,
            w: 12,
            stride: (2, 2),
            pads: [0, 0, 1, 1],
            ..BASE
        });
        check(Case {
            channels,
            h: 13,
            w: 13,
            kernel: (5, 5),
            stride: (2, 2),
            pads: [1, 1, 2, 2],
            ..BASE
        });
    }
}

#[test]
fn uneven_strides_kernels_and_pads() {
    for (channels, w, stride) in [(2, 9, (3, 1)), (8, 9, (3, 1)), (8, 25, (3, 2))] {
        check(Case {
            channels,
            h: 8,
            w,
            kernel: (3, 7),
            stride,
            pads: [3, 1, 2, 0],
            clip: None,
            ..BASE
        });
    }
    check(Case {
        kernel: (1, 1),
        stride: (2, 3),
        pads: [0, 0, 0, 0],
        ..BASE
    });
}

#[test]
fn rows_wider_than_a_simd_block_and_several_planes() {
    // 70 columns: more than one block of 64 outputs per row.
    check(Case {
        channels: 5,
        h: 6,
        w: 70,
        ..BASE
    });
}

#[test]
fn batch_of_two_and_no_clip() {
    for channels in [3, 24] {
        check(Case {
            batch: 2,
            channels,
            clip: None,
            ..BASE
        });
    }
}

#[test]
fn a_relu_only_clip_and_a_one_pixel_image() {
    check(Case {
        clip: Some((0.0, f32::MAX)),
        ..BASE
    });
    check(Case {
        h: 1,
        w: 1,
        kernel: (3, 3),
        pads: [1, 1, 1, 1],
        clip: None,
        ..BASE
    });
}

const POINTWISE: Case = Case {
    channels: 7,
    out_channels: Some(13),
    kernel: (1, 1),
    stride: (1, 1),
    pads: [0, 0, 0, 0],
    ..BASE
};

#[test]
fn pointwise_with_partial_blocks_of_channels_and_pixels() {
    // 13 outputs: two blocks of 6 and one of 1; 9 × 11 = 99 pixels: whole
    // panels and a partial one, for every vector width.
    check(POINTWISE);
    check(Case {
        clip: None,
        ..POINTWISE
    });
}

#[test]
fn pointwise_batch_of_two_and_large_sizes() {
    check(Case {
        batch: 2,
        channels: 40,
        out_channels: Some(24),
        h: 14,
        w: 14,
        ..POINTWISE
    });
    check(Case {
        channels: 1,
        out_channels: Some(1),
        h: 1,
        w: 1,
        clip: None,
        ..POINTWISE
    });
}

#[test]
fn a_constant_added_along_the_width_is_not_taken_for_a_bias() {
    // A 1×1 convolution without bias followed by `Add` of a `[w]` constant,
    // with w equal to the output channels: it broadcasts along W, so it must
    // stay an `Add`, not become a per-channel bias.
    let c = Case {
        w: 13,
        clip: None,
        ..POINTWISE
    };
    let mut g = graph(&c);
    g.nodes[0].input.truncate(2);
    g.nodes[0].output = vec!["conv".into()];
    g.inits.retain(|t| t.name != "b");
    g.inits.push(floats("row", &[13], values(13, 4)));
    g.nodes.push(node("Add", &["conv", "row"], "y", vec![]));
    check_model(c, &g.bytes());
}

#[test]
fn blocked_depthwise_runs_with_overlap_and_one_run_a_row() {
    let c = Case { channels: 16, ..BASE };
    // 11 columns: two runs of 6 natively, the second overlapping the first
    // (three of 4 in wasm); 5 columns: one run of 5.
    check(c);
    check(Case { w: 5, ..c });
    // 3 columns: too narrow for a run, so NCHW, and still right.
    check(Case { w: 3, ..c });
    check(Case {
        kernel: (5, 5),
        pads: [2, 2, 2, 2],
        h: 14,
        w: 14,
        ..c
    });
}

#[test]
fn blocked_depthwise_run_lengths_strides_and_its_input_rewritten_in_place() {
    let c = Case { channels: 16, ..BASE };
    // At stride 1, rows of 7, 8, 9, 14 and 17 pixels take runs of 7, 4, 5,
    // 7 and 6 natively (5 at most in wasm), with and without overlap; at
    // stride 2 their rows of 8, 9, 10, 15 and 18 take runs of 8, 5, 5, 8
    // and 6. At stride 1 with "same" padding the kernel writes over its
    // input, which only it reads; at stride 2 it cannot.
    for w in [7, 8, 9, 14, 17] {
        check(Case { w, ..c });
        check(Case {
            w: 2 * w + 1,
            stride: (2, 2),
            ..c
        });
        check(Case {
            w,
            h: 12,
            kernel: (5, 5),
            pads: [2, 2, 2, 2],
            ..c
        });
    }
}

#[test]
fn blocked_depthwise_large_planes_keep_a_ring_of_rows() {
    // A padded plane over 128 KB keeps only the rows its kernel reads, in a
    // ring: in place at stride 1 (each input row is in the ring before its
    // output row is written over it), at stride 2 where 2 of a row's 7
    // pixels are edges, with 5×5 kernels, with uneven padding and over a
    // batch. At stride 2 with few edges the large plane is read where it
    // is.
    let c = Case {
        channels: 16,
        h: 70,
        w: 66,
        ..BASE
    };
    check(c);
    check(Case {
        kernel: (5, 5),
        pads: [2, 2, 2, 2],
        ..c
    });
    check(Case {
        stride: (2, 2),
        pads: [0, 0, 1, 1],
        h: 131,
        w: 129,
        ..c
    });
    check(Case {
        kernel: (5, 5),
        stride: (2, 2),
        pads: [2, 2, 2, 2],
        h: 250,
        w: 13,
        ..c
    });
    check(Case {
        kernel: (5, 3),
        pads: [1, 1, 3, 1],
        batch: 2,
        ..c
    });
}

#[test]
fn blocked_depthwise_reads_an_input_it_does_not_write_over_where_it_is() {
    // Not in place (stride 2), runs read the input itself, and the pixels
    // at a row's ends whose taps reach into the padding are computed alone:
    // edges on both sides, kernel rows in the padding above and below,
    // uneven padding, a batch, a kernel wider than tall.
    let c = Case {
        channels: 16,
        kernel: (5, 5),
        stride: (2, 2),
        pads: [2, 2, 2, 2],
        h: 21,
        w: 33,
        ..BASE
    };
    check(c);
    check(Case {
        pads: [1, 3, 2, 0],
        batch: 2,
        ..c
    });
    check(Case {
        kernel: (3, 5),
        pads: [0, 1, 2, 2],
        ..c
    });
    // 2 edge pixels of 7: copied into a padded plane instead.
    check(Case { w: 13, ..c });
}

#[test]
fn blocked_depthwise_leaves_an_input_another_node_reads() {
    // `x` → 1×1 → `t` → depthwise → `u`, and `y = u + t`: the residual
    // `Add` still reads `t` after the depthwise layer, so that layer must
    // not write its output over `t`.
    let c = Case {
        channels: 16,
        w: 12,
        clip: None,
        ..BASE
    };
    let mut g = graph(&c);
    g.nodes[0].input[0] = "t".into();
    g.nodes[0].output = vec!["u".into()];
    g.nodes.insert(
        0,
        node(
            "Conv",
            &["x", "kp", "bp"],
            "t",
            vec![a_ints("kernel_shape", &[1, 1])],
        ),
    );
    g.inits.push(floats("kp", &[16, 16, 1, 1], values(256, 5)));
    g.inits.push(floats("bp", &[16], values(16, 6)));
    g.nodes.push(node("Add", &["u", "t"], "y", vec![]));
    check_model(c, &g.bytes());
}

#[test]
fn blocked_pointwise_odd_block_counts_and_partial_pixel_runs() {
    // 24 outputs: a pair of blocks and a single one; 99 pixels: runs of 6
    // (5 in wasm) and one overlapping the run before.
    check(Case {
        channels: 16,
        out_channels: Some(24),
        ..POINTWISE
    });
    check(Case {
        channels: 8,
        out_channels: Some(8),
        h: 2,
        w: 3,
        clip: None,
        ..POINTWISE
    });
    // 5 pixels: fewer than a run natively, so NCHW there; one whole run
    // in wasm. 4 pixels: fewer than either.
    for w in [5, 4] {
        check(Case {
            channels: 8,
            out_channels: Some(16),
            h: 1,
            w,
            ..POINTWISE
        });
    }
    // 20 pixels, over a batch: natively three runs of 6 and the last two
    // pixels one by one (`NARROW_TAIL`), for the pair of blocks; in wasm
    // four runs of 5.
    check(Case {
        batch: 2,
        channels: 16,
        out_channels: Some(24),
        h: 4,
        w: 5,
        ..POINTWISE
    });
    // Enough input channels for several pixel tiles, the last of them one
    // pixel.
    check(Case {
        channels: 1152,
        out_channels: Some(40),
        h: 7,
        w: 7,
        ..POINTWISE
    });
}

/// A network's stem: an RGB image into 32 channels, 3×3, stride 2.
const STEM: Case = Case {
    channels: 3,
    out_channels: Some(32),
    h: 18,
    w: 22,
    kernel: (3, 3),
    stride: (2, 2),
    pads: [0, 0, 1, 1],
    ..BASE
};

#[test]
fn dense_stem_into_the_blocked_layout() {
    check(STEM);
    check(Case {
        batch: 2,
        pads: [1, 1, 1, 1],
        clip: None,
        ..STEM
    });
    check(Case {
        channels: 1,
        out_channels: Some(16),
        kernel: (5, 3),
        stride: (1, 1),
        pads: [2, 1, 2, 1],
        ..STEM
    });
    // Natively, output blocks go two at a time, and a pair's rows are
    // split between threads where there are more threads than pairs: three
    // blocks are a pair and one alone, and one block is alone, its rows
    // split.
    check(Case {
        out_channels: Some(24),
        ..STEM
    });
    check(Case {
        out_channels: Some(8),
        h: 31,
        ..STEM
    });
    // Rows of 7: too narrow for a run of 8, so tract's, and still right;
    // and a stride of 3, which the kernel does not take.
    check(Case { w: 13, ..STEM });
    check(Case {
        stride: (3, 3),
        h: 30,
        w: 30,
        ..STEM
    });
}

#[test]
fn dense_stem_takes_in_a_zero_pad_before_it() {
    // What EfficientNet-Lite exports: `Pad` (after only) then an unpadded
    // convolution.
    let c = Case {
        pads: [0, 0, 0, 0],
        h: 19,
        w: 23,
        ..STEM
    };
    let mut g = graph(&c);
    g.inits.push(int64s("pads", &[0, 0, 0, 0, 0, 0, 1, 1]));
    g.nodes.insert(0, node("Pad", &["x", "pads"], "padded", vec![]));
    g.nodes[1].input[0] = "padded".into();
    g.inputs = vec![("x".into(), vec![1, 3, 18, 22])];
    let shaped = Case { h: 18, w: 22, ..c };
    let bytes = g.bytes();
    check_model(shaped, &bytes);
    if blocked_applies(&shaped) {
        let x = Tensor::new(vec![1, 3, 18, 22], TensorData::Float(values(3 * 18 * 22, 5))).unwrap();
        let (_, ops) = run(&bytes, ConvLayout::Blocked, &x);
        assert!(!ops.iter().any(|o| o == "Pad"), "the pad stayed: {ops:?}");
    }
}

#[test]
fn an_empty_image_is_an_error_or_empty_never_a_panic() {
    // No rows, or no columns: tract may refuse the graph or run it; the
    // kernels must not be handed planes or rows of size zero.
    for (h, w) in [(0, 11), (9, 0)] {
        for c in [
            Case {
                channels: 8,
                h,
                w,
                ..BASE
            },
            Case {
                channels: 8,
                out_channels: Some(8),
                h,
                w,
                ..POINTWISE
            },
            Case { h, w, ..STEM },
        ] {
            let Ok(e) = CpuEngine::load(&model(&c), &CpuOptions::default()) else {
                continue;
            };
            let input = Tensor::new(vec![c.batch, c.channels, h, w], TensorData::Float(Vec::new())).unwrap();
            let mut inputs = NamedTensors::new();
            inputs.insert("x".into(), input);
            if let Ok(out) = e.run_blocking(inputs) {
                assert!(out["y"].shape().contains(&0), "{c:?}: {:?}", out["y"].shape());
            }
        }
    }
}

#[test]
fn a_residual_add_after_a_1x1_product_is_folded_into_it() {
    // `x` → 1×1 → `t` → 1×1 → `m` → 1×1 (→ Clip) → `u`, then `s` from `u`
    // and `t`, and `y` a 1×1 of `s` (a model output is converted out of the
    // blocked layout before any `Add`). On the blocked layout `s = u + t`
    // becomes part of the third product, which adds into `t`'s own buffer;
    // with the clip the product is clipped before the sum. With `t` read again after the sum, it adds
    // into a copy of `t`, which the second sum then reads intact. With `u`
    // read twice its `Add`s stay.
    let c = Case {
        batch: 2,
        channels: 16,
        out_channels: Some(16),
        h: 5,
        w: 7,
        kernel: (1, 1),
        pads: [0; 4],
        clip: None,
        ..BASE
    };
    // Each case: its name, whether `u` is clipped, whether an `Add` still
    // runs on the blocked layout, and the nodes from `u` and `t` to `s`.
    let cases: [(&str, bool, bool, Vec<_>); 5] = [
        ("u + t", false, false, vec![node("Add", &["u", "t"], "s", vec![])]),
        ("t + u", false, false, vec![node("Add", &["t", "u"], "s", vec![])]),
        (
            "clip(u) + t",
            true,
            false,
            vec![node("Add", &["u", "t"], "s", vec![])],
        ),
        (
            "(u + t) + t",
            false,
            true,
            vec![
                node("Add", &["u", "t"], "v", vec![]),
                node("Add", &["v", "t"], "s", vec![]),
            ],
        ),
        (
            "(u + t) + u",
            false,
            true,
            vec![
                node("Add", &["u", "t"], "v", vec![]),
                node("Add", &["v", "u"], "s", vec![]),
            ],
        ),
    ];
    // Natively a 5×7 plane (35 pixels) is runs of six and one of five; a
    // 3×3 one (9) ends with a run that overlaps the one before, which must
    // store, and so add, only the pixels the run before did not.
    for (h, w) in [(5, 7), (3, 3)] {
        let c = Case { h, w, ..c };
        for (name, clip, add_stays, tail) in cases.clone() {
            let name = format!("{name} on {h}×{w}");
            let conv = |x: &str, k: &str, b: &str, y: &str| {
                node("Conv", &[x, k, b], y, vec![a_ints("kernel_shape", &[1, 1])])
            };
            let mut nodes = vec![conv("x", "k1", "b1", "t"), conv("t", "km", "bm", "m")];
            if clip {
                nodes.push(conv("m", "k2", "b2", "p"));
                nodes.push(node("Clip", &["p", "lo", "hi"], "u", vec![]));
            } else {
                nodes.push(conv("m", "k2", "b2", "u"));
            }
            nodes.extend(tail);
            nodes.push(conv("s", "k3", "b3", "y"));
            let shape = vec![c.batch, 16, c.h, c.w];
            let mut g = Graph::new(nodes, vec![("x", shape.clone())]);
            g.inits = vec![
                floats("k1", &[16, 16, 1, 1], values(256, 8)),
                floats("b1", &[16], values(16, 9)),
                floats("k2", &[16, 16, 1, 1], values(256, 10)),
                floats("b2", &[16], values(16, 11)),
                floats("km", &[16, 16, 1, 1], values(256, 15)),
                floats("bm", &[16], values(16, 16)),
                floats("k3", &[16, 16, 1, 1], values(256, 13)),
                floats("b3", &[16], values(16, 14)),
                floats("lo", &[], vec![0.0]),
                floats("hi", &[], vec![1.0]),
            ];
            g.outputs = vec![("y".into(), Some(shape.clone()))];
            let x: Vec<f32> = values(shape.iter().product(), 12)
                .iter()
                .map(|v| v * 4.0)
                .collect();
            let input = Tensor::new(shape, TensorData::Float(x)).unwrap();
            let (tract, _) = run(&g.bytes(), ConvLayout::ChannelsLast, &input);
            let (ours, ops) = run(&g.bytes(), ConvLayout::Blocked, &input);
            let add = ops.iter().any(|o| o.contains("Add"));
            assert_eq!(add, add_stays || !blocked_applies(&c), "{name}: ran {ops:?}");
            let (TensorData::Float(a), TensorData::Float(b)) = (ours.data(), tract.data()) else {
                panic!("{name}: not f32 outputs")
            };
            // Relative: four products deep, the values reach the hundreds.
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                .fold(0f32, f32::max);
            assert!(worst <= 1e-4, "{name}: max relative diff {worst}");
        }
    }
}

#[test]
fn a_global_average_pool_reads_the_blocked_layout() {
    // `x` → 1×1 → `t` → GlobalAveragePool → `y`: the pool's sum reads the
    // 1×1's blocked output as it is, with no conversion back before it.
    for (batch, channels) in [(1, 16), (2, 24), (1, 12)] {
        let c = Case {
            batch,
            channels,
            out_channels: Some(channels),
            kernel: (1, 1),
            pads: [0; 4],
            clip: None,
            ..BASE
        };
        let mut g = graph(&c);
        g.nodes[0].output = vec!["t".into()];
        g.nodes.push(node("GlobalAveragePool", &["t"], "y", vec![]));
        let x = values(batch * channels * c.h * c.w, 7);
        let input = Tensor::new(vec![batch, channels, c.h, c.w], TensorData::Float(x)).unwrap();
        let (tract, ops) = run(&g.bytes(), ConvLayout::ChannelsLast, &input);
        assert!(
            !ops.iter().any(|o| o.starts_with("Edgeserve")),
            "tract alone ran {ops:?}"
        );
        let (ours, ops) = run(&g.bytes(), ConvLayout::Blocked, &input);
        let ran = |name: &str| ops.iter().any(|o| o == name);
        // Twelve channels are not whole blocks: NCHW throughout, tract's sum.
        let blocked = blocked_applies(&c);
        assert_eq!(ran("EdgeserveBlockedSpatialSum"), blocked, "{c:?} ran {ops:?}");
        assert!(!ran("EdgeserveFromBlocked"), "{c:?} ran {ops:?}");
        assert_eq!(ours.shape(), tract.shape(), "{c:?}");
        assert_eq!(ours.shape(), [batch, channels, 1, 1], "{c:?}");
        let (TensorData::Float(a), TensorData::Float(b)) = (ours.data(), tract.data()) else {
            panic!("{c:?}: not f32 outputs")
        };
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{c:?}: max abs diff {worst}");
    }
}

/// A classifier's last layer, as exporters write it.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// `Gemm` with `transB = 1`: weights `[n, k]`, and a bias.
    Gemm,
    /// The same without its bias.
    GemmNoBias,
    /// `MatMul` with weights `[k, n]`, then `Add` of a bias.
    MatMulAdd,
}

/// `x [batch, k]` → the head → `y [batch, n]`.
fn head(form: Head, batch: usize, k: usize, n: usize) -> Vec<u8> {
    let (nodes, inits) = match form {
        Head::Gemm | Head::GemmNoBias => {
            let inputs: &[&str] = if matches!(form, Head::Gemm) {
                &["x", "w", "b"]
            } else {
                &["x", "w"]
            };
            (
                vec![node("Gemm", inputs, "y", vec![a_i("transB", 1)])],
                vec![
                    floats("w", &[n, k], values(n * k, 11)),
                    floats("b", &[n], values(n, 12)),
                ],
            )
        }
        Head::MatMulAdd => (
            vec![
                node("MatMul", &["x", "w"], "t", vec![]),
                node("Add", &["t", "b"], "y", vec![]),
            ],
            vec![
                floats("w", &[k, n], values(k * n, 11)),
                floats("b", &[n], values(n, 12)),
            ],
        ),
    };
    let mut g = Graph::new(nodes, vec![("x", vec![batch, k])]);
    g.inits = inits;
    g.outputs = vec![("y".into(), Some(vec![batch, n]))];
    g.bytes()
}

/// The matrix–vector kernel (`EdgeserveGemv`) takes a classifier head
/// natively, in each form, with sizes that are not whole vectors, and
/// gives tract's answer; on it a batch of two answers exactly as its
/// images one at a time. wasm stays on tract's product (and still gives its
/// answer).
#[test]
fn a_classifier_head_runs_on_the_matrix_vector_kernel_and_a_batch_answers_as_its_images_alone() {
    let cpu = avx2_fma();
    for form in [Head::Gemm, Head::GemmNoBias, Head::MatMulAdd] {
        for (batch, k, n) in [(1, 1280, 1000), (1, 21, 7), (1, 3, 2), (2, 21, 7)] {
            let bytes = head(form, batch, k, n);
            let x: Vec<f32> = values(batch * k, 13).iter().map(|v| v * 4.0).collect();
            let input = Tensor::new(vec![batch, k], TensorData::Float(x)).unwrap();
            let (tract, ops) = run(&bytes, ConvLayout::ChannelsLast, &input);
            assert!(
                !ops.iter().any(|o| o.starts_with("Edgeserve")),
                "tract alone ran {ops:?}"
            );
            for layout in [ConvLayout::AsModel, ConvLayout::Blocked] {
                let (ours, ops) = run(&bytes, layout, &input);
                let case = format!("{form:?} batch {batch}, {k} → {n}, {layout:?}");
                assert_eq!(
                    ops.iter().any(|o| o == "EdgeserveGemv"),
                    cpu,
                    "{case} ran {ops:?}"
                );
                assert_eq!(ours.shape(), tract.shape(), "{case}");
                let (TensorData::Float(a), TensorData::Float(b)) = (ours.data(), tract.data()) else {
                    panic!("{case}: not f32 outputs")
                };
                for (i, (g, w)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (1.0 + k as f32).sqrt() * (1.0 + w.abs()),
                        "{case}, value {i}: {g} against {w}"
                    );
                }
                // Each image of the batch, run alone, gives its row to the
                // bit: where the kernel runs. tract's product (in wasm) rounds
                // a batch of two differently from one image (1e-6 here).
                if batch > 1 && cpu {
                    let alone_bytes = head(form, 1, k, n);
                    for (image, (xi, row)) in input_rows(&input, k).into_iter().zip(a.chunks(n)).enumerate() {
                        let one = Tensor::new(vec![1, k], TensorData::Float(xi)).unwrap();
                        let (alone, _) = run(&alone_bytes, layout, &one);
                        let TensorData::Float(alone) = alone.data() else {
                            panic!("{case}: not f32")
                        };
                        assert_eq!(row, &alone[..], "{case}: image {image} in the batch and alone");
                    }
                }
            }
        }
    }
}

/// The rows of a `[batch, k]` f32 tensor.
fn input_rows(t: &Tensor, k: usize) -> Vec<Vec<f32>> {
    let TensorData::Float(v) = t.data() else {
        panic!("not f32")
    };
    v.chunks(k).map(<[f32]>::to_vec).collect()
}

/// An inverted bottleneck's expansion and depthwise step
/// (`testkit::onnx::Expansion`). Natively, with AVX2 and FMA, the 1×1
/// product is fused into the depthwise convolution that reads it
/// (`EdgeserveExpandDepthwise`) where the expansion is over 4 MB an image
/// and every input column lands in the padded rows the depthwise kernel
/// reads; elsewhere, and in wasm, the two run apart. Either way the answer
/// is tract's.
#[test]
fn an_expansion_is_fused_into_the_depthwise_convolution_that_reads_it() {
    use edgeserve_testkit::onnx::Expansion;
    let cpu = avx2_fma();
    let base = Expansion {
        batch: 1,
        k: 16,
        channels: 352,
        h: 56,
        w: 56,
        kernel: 3,
        stride: 1,
        pads: [1; 4],
    };
    // Each case, whether it is fused, and whether the expansion is also a
    // model output (then it must be kept whole).
    let cases = [
        // 4.4 MB; rows of 56 pixels: runs of six and of five.
        (base, true, false),
        // TensorFlow's padding at stride 2, on 57 columns (runs of six and
        // three of five).
        (
            Expansion {
                w: 57,
                stride: 2,
                pads: [0, 0, 1, 1],
                ..base
            },
            true,
            false,
        ),
        // 5×5 at stride 2, padded on the left too.
        (
            Expansion {
                kernel: 5,
                stride: 2,
                pads: [1, 1, 2, 2],
                ..base
            },
            true,
            false,
        ),
        // Rows of 14 pixels, which end in single pixels, two images, and
        // more padding rows than the ring has slots above the first.
        (
            Expansion {
                batch: 2,
                k: 24,
                channels: 1024,
                h: 80,
                w: 14,
                kernel: 5,
                pads: [2; 4],
                ..base
            },
            true,
            false,
        ),
        // Unpadded at stride 2: the last input column is read by no tap,
        // so the padded rows do not hold it.
        (
            Expansion {
                stride: 2,
                pads: [0; 4],
                ..base
            },
            false,
            false,
        ),
        // 1.2 MB, over L2 but not over 4 MB: unfused it measured faster.
        (Expansion { channels: 96, ..base }, false, false),
        // The expansion is also an output.
        (base, false, true),
    ];
    for (c, fused, expansion_out) in cases {
        let mut g = c.graph();
        if expansion_out {
            g.outputs
                .push(("e".into(), Some(vec![c.batch, c.channels, c.h, c.w])));
        }
        let bytes = g.bytes();
        let x: Vec<f32> = values(c.batch * c.k * c.h * c.w, 17)
            .iter()
            .map(|v| v * 4.0)
            .collect();
        let input = Tensor::new(vec![c.batch, c.k, c.h, c.w], TensorData::Float(x)).unwrap();
        let (tract, _) = run(&bytes, ConvLayout::ChannelsLast, &input);
        let (ours, ops) = run(&bytes, ConvLayout::Blocked, &input);
        let case = format!("{c:?}, the expansion an output: {expansion_out}");
        let fused = fused && cpu;
        let ran = |name: &str| ops.iter().any(|o| o == name);
        assert_eq!(ran("EdgeserveExpandDepthwise"), fused, "{case} ran {ops:?}");
        assert_eq!(ran("EdgeservePointwiseConv"), !fused, "{case} ran {ops:?}");
        assert_eq!(ran("EdgeserveDepthwiseConv"), !fused, "{case} ran {ops:?}");
        assert_eq!(ours.shape(), tract.shape(), "{case}");
        let (TensorData::Float(a), TensorData::Float(b)) = (ours.data(), tract.data()) else {
            panic!("{case}: not f32 outputs")
        };
        for (i, (g, w)) in a.iter().zip(b).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{case}, value {i}: {g} against {w}"
            );
        }
        assert!(
            a.contains(&0.0) && a.contains(&6.0),
            "{case}: the test data should reach both bounds"
        );
    }
}
