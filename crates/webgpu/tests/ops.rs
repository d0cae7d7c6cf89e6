//! One tiny ONNX graph per operator and attribute the WebGPU backend
//! supports, assembled with `edgeserve_testkit::onnx`, run on the GPU and on tract (the
//! CPU backend), and compared: max abs difference ≤ 1e-4, 1e-3 for long
//! reductions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use edgeserve_engine::EngineError;
use edgeserve_onnx::pb::{AttributeProto, TensorProto};

fn conv(attrs: Vec<AttributeProto>, x: &[usize], w: &[usize], bias: bool) -> Case {
    let mut inputs = vec!["x", "w"];
    let mut inits = vec![weight("w", w, 1)];
    if bias {
        inputs.push("b");
        inits.push(weight("b", &[w[0]], 2));
    }
    Case::new(vec![node("Conv", &inputs, "y", attrs)], vec![("x", x.to_vec())]).inits(inits)
}

gpu_test! {
    async fn conv_3x3_same() {
        conv(vec![a_ints("pads", &[1, 1, 1, 1])], &[1, 3, 9, 9], &[4, 3, 3, 3], true).check().await;
    }
}

gpu_test! {
    async fn conv_strided_with_asymmetric_pads() {
        conv(
            vec![a_ints("pads", &[0, 1, 2, 0]), a_ints("strides", &[2, 2])],
            &[2, 3, 10, 11],
            &[5, 3, 3, 3],
            true,
        )
        .check().await;
    }
}

gpu_test! {
    async fn conv_dilated_without_bias() {
        conv(vec![a_ints("dilations", &[2, 2])], &[1, 2, 9, 9], &[3, 2, 3, 3], false).check().await;
    }
}

gpu_test! {
    async fn conv_grouped() {
        conv(
            vec![a_i("group", 2), a_ints("pads", &[1, 1, 1, 1])],
            &[1, 4, 7, 7],
            &[6, 2, 3, 3],
            true,
        )
        .check().await;
    }
}

gpu_test! {
    async fn conv_depthwise() {
        conv(
            vec![a_i("group", 8), a_ints("pads", &[2, 2, 2, 2]), a_ints("strides", &[2, 2])],
            &[1, 8, 12, 12],
            &[8, 1, 5, 5],
            true,
        )
        .check().await;
    }
}

gpu_test! {
    async fn conv_auto_pad_same_upper_and_lower() {
        for mode in ["SAME_UPPER", "SAME_LOWER"] {
            conv(
                vec![a_s("auto_pad", mode), a_ints("strides", &[2, 2])],
                &[1, 2, 8, 8],
                &[3, 2, 4, 4],
                true,
            )
            .check().await;
        }
    }
}

gpu_test! {
    async fn conv_auto_pad_valid_and_1x1() {
        conv(vec![a_s("auto_pad", "VALID")], &[1, 3, 6, 6], &[4, 3, 3, 3], true).check().await;
        conv(vec![], &[2, 16, 5, 5], &[8, 16, 1, 1], true).check().await;
    }
}

gpu_test! {
    async fn conv_fuses_bias_and_the_activation_after_it() {
        for (op, attrs, extra) in [
            ("Relu", vec![], vec![]),
            ("LeakyRelu", vec![a_f("alpha", 0.2)], vec![]),
            ("HardSwish", vec![], vec![]),
            ("Clip", vec![], vec!["lo", "hi"]),
        ] {
            let mut inputs = vec!["c"];
            inputs.extend(extra.iter());
            let case = Case::new(
                vec![
                    node("Conv", &["x", "w", "b"], "c", vec![a_ints("pads", &[1, 1, 1, 1])]),
                    node(op, &inputs, "y", attrs),
                ],
                vec![("x", vec![1, 3, 6, 6])],
            )
            .inits(vec![
                weight("w", &[4, 3, 3, 3], 3),
                weight("b", &[4], 4),
                floats("lo", &[], vec![0.0]),
                floats("hi", &[], vec![6.0]),
            ]);
            let gpu = case.check().await;
            assert_eq!(gpu.program_stats(), (1, 1), "{op} was not fused");
        }
    }
}

gpu_test! {
    async fn conv_output_read_twice_is_not_fused() {
        let gpu = Case::new(
            vec![
                node("Conv", &["x", "w"], "c", vec![]),
                node("Relu", &["c"], "r", vec![]),
                node("Add", &["c", "r"], "y", vec![]),
            ],
            vec![("x", vec![1, 2, 5, 5])],
        )
        .inits(vec![weight("w", &[2, 2, 3, 3], 5)])
        .check().await;
        assert_eq!(gpu.program_stats(), (3, 0));
    }
}

gpu_test! {
    async fn elementwise_binary_ops_broadcast() {
        for op in ["Add", "Sub", "Mul", "Div"] {
            // computed ⊕ constant [C,1,1], and computed ⊕ computed of rank 2.
            Case::new(vec![node(op, &["x", "k"], "y", vec![])], vec![("x", vec![2, 3, 4, 5])])
                .inits(vec![floats("k", &[3, 1, 1], vec![0.5, -1.5, 2.5])])
                .check().await;
            Case::new(
                vec![node(op, &["x", "z"], "y", vec![])],
                vec![("x", vec![2, 3, 4, 5]), ("z", vec![4, 1])],
            )
            .check().await;
        }
    }
}

gpu_test! {
    async fn activations() {
        let cases: Vec<(&str, Vec<AttributeProto>)> = vec![
            ("Relu", vec![]),
            ("LeakyRelu", vec![a_f("alpha", 0.3)]),
            ("Sigmoid", vec![]),
            ("HardSigmoid", vec![a_f("alpha", 0.3), a_f("beta", 0.4)]),
            ("HardSwish", vec![]),
            ("Tanh", vec![]),
        ];
        for (op, attrs) in cases {
            Case::new(vec![node(op, &["x"], "y", attrs)], vec![("x", vec![1, 3, 5, 7])]).check().await;
        }
    }
}

gpu_test! {
    async fn clip_with_both_one_or_no_bound() {
        let inits = vec![floats("lo", &[], vec![-0.5]), floats("hi", &[], vec![0.7])];
        for inputs in [vec!["x", "lo", "hi"], vec!["x", "lo"], vec!["x", "", "hi"]] {
            Case::new(vec![node("Clip", &inputs, "y", vec![])], vec![("x", vec![2, 9])])
                .inits(inits.clone())
                .check().await;
        }
        // opset 6: bounds as attributes.
        Case::new(
            vec![node("Clip", &["x"], "y", vec![a_f("min", -1.0), a_f("max", 0.25)])],
            vec![("x", vec![3, 4])],
        )
        .opset(6)
        .check().await;
    }
}

gpu_test! {
    async fn max_pool() {
        let pool = |attrs| Case::new(vec![node("MaxPool", &["x"], "y", attrs)], vec![("x", vec![1, 2, 9, 10])]);
        pool(vec![a_ints("kernel_shape", &[3, 3]), a_ints("strides", &[2, 2]), a_ints("pads", &[1, 1, 1, 1])]).check().await;
        pool(vec![a_ints("kernel_shape", &[2, 2]), a_ints("strides", &[2, 2]), a_i("ceil_mode", 1)]).check().await;
        pool(vec![a_ints("kernel_shape", &[2, 2]), a_ints("dilations", &[2, 2])]).check().await;
        pool(vec![a_ints("kernel_shape", &[3, 2]), a_ints("pads", &[0, 1, 1, 0])]).check().await;
    }
}

gpu_test! {
    async fn average_pool() {
        let pool = |attrs| Case::new(vec![node("AveragePool", &["x"], "y", attrs)], vec![("x", vec![2, 3, 8, 9])]);
        let base = || vec![a_ints("kernel_shape", &[3, 3]), a_ints("strides", &[2, 2]), a_ints("pads", &[1, 1, 1, 1])];
        pool(base()).check().await;
        pool([base(), vec![a_i("count_include_pad", 1)]].concat()).check().await;
        pool(vec![a_ints("kernel_shape", &[2, 2]), a_ints("strides", &[2, 2]), a_i("ceil_mode", 1)]).check().await;
        pool(vec![a_ints("kernel_shape", &[3, 3]), a_s("auto_pad", "SAME_UPPER")]).check().await;
    }
}

gpu_test! {
    async fn global_pools() {
        for op in ["GlobalAveragePool", "GlobalMaxPool"] {
            Case::new(vec![node(op, &["x"], "y", vec![])], vec![("x", vec![2, 4, 13, 11])])
                .tolerance(1e-3)
                .check().await;
        }
    }
}

gpu_test! {
    async fn batch_normalization() {
        let c = 5;
        let var = values(c, 9).into_iter().map(|v| v.abs() + 0.1).collect();
        Case::new(
            vec![node(
                "BatchNormalization",
                &["x", "s", "bias", "m", "v"],
                "y",
                vec![a_f("epsilon", 1e-3)],
            )],
            vec![("x", vec![2, c, 4, 4])],
        )
        .inits(vec![
            weight("s", &[c], 6),
            weight("bias", &[c], 7),
            weight("m", &[c], 8),
            floats("v", &[c], var),
        ])
        .check().await;
    }
}

gpu_test! {
    async fn gemm_with_transposes_alpha_and_beta() {
        for (ta, tb) in [(0, 1), (1, 0), (0, 0), (1, 1)] {
            let a = if ta == 1 { vec![6, 3] } else { vec![3, 6] };
            let b = if tb == 1 { [5, 6] } else { [6, 5] };
            Case::new(
                vec![node(
                    "Gemm",
                    &["a", "b", "c"],
                    "y",
                    vec![a_i("transA", ta), a_i("transB", tb), a_f("alpha", 0.5), a_f("beta", 2.0)],
                )],
                vec![("a", a)],
            )
            .inits(vec![weight("b", &b, 10), weight("c", &[5], 11)])
            .check().await;
        }
    }
}

gpu_test! {
    async fn matmul_batched_and_with_a_vector() {
        Case::new(vec![node("MatMul", &["a", "b"], "y", vec![])], vec![("a", vec![2, 3, 7])])
            .inits(vec![weight("b", &[7, 4], 12)])
            .check().await;
        Case::new(
            vec![node("MatMul", &["a", "b"], "y", vec![])],
            vec![("a", vec![3, 7]), ("b", vec![7])],
        )
        .check().await;
    }
}

gpu_test! {
    async fn softmax_per_axis_and_flattened() {
        Case::new(vec![node("Softmax", &["x"], "y", vec![])], vec![("x", vec![2, 3, 10])]).check().await;
        Case::new(vec![node("Softmax", &["x"], "y", vec![a_i("axis", 1)])], vec![("x", vec![2, 3, 4])]).check().await;
        // opset 11: axis 1 means "flatten from axis 1" (one softmax over 3×4).
        Case::new(vec![node("Softmax", &["x"], "y", vec![a_i("axis", 1)])], vec![("x", vec![2, 3, 4])])
            .opset(11)
            .check().await;
    }
}

gpu_test! {
    async fn reduce_mean() {
        for keep in [0, 1] {
            Case::new(
                vec![node("ReduceMean", &["x"], "y", vec![a_ints("axes", &[2, 3]), a_i("keepdims", keep)])],
                vec![("x", vec![2, 3, 5, 6])],
            )
            .tolerance(1e-3)
            .check().await;
        }
        // opset 18: axes as an input.
        Case::new(
            vec![node("ReduceMean", &["x", "axes"], "y", vec![])],
            vec![("x", vec![2, 3, 5])],
        )
        .inits(vec![int64s("axes", &[-1])])
        .opset(18)
        .check().await;
    }
}

gpu_test! {
    async fn shape_ops() {
        Case::new(
            vec![
                node("Reshape", &["x", "shape"], "r", vec![]),
                node("Transpose", &["r"], "y", vec![a_ints("perm", &[0, 2, 1])]),
            ],
            vec![("x", vec![2, 3, 4, 5])],
        )
        .inits(vec![int64s("shape", &[0, -1, 5])])
        .check().await;
        Case::new(vec![node("Flatten", &["x"], "y", vec![a_i("axis", 2)])], vec![("x", vec![2, 3, 4, 5])]).check().await;
        Case::new(
            vec![
                node("Squeeze", &["x", "a"], "s", vec![]),
                node("Unsqueeze", &["s", "b"], "y", vec![]),
            ],
            vec![("x", vec![3, 1, 4])],
        )
        .inits(vec![int64s("a", &[1]), int64s("b", &[0, 3])])
        .check().await;
        Case::new(vec![node("Transpose", &["x"], "y", vec![])], vec![("x", vec![2, 3, 4])]).check().await;
    }
}

gpu_test! {
    async fn concat_of_computed_and_constant_tensors() {
        Case::new(
            vec![node("Concat", &["x", "k", "z"], "y", vec![a_i("axis", -3)])],
            vec![("x", vec![1, 2, 3, 3]), ("z", vec![1, 3, 3, 3])],
        )
        .inits(vec![weight("k", &[1, 1, 3, 3], 13)])
        .check().await;
    }
}

gpu_test! {
    async fn pad_constant() {
        Case::new(
            vec![node("Pad", &["x", "pads", "v"], "y", vec![])],
            vec![("x", vec![1, 2, 3, 4])],
        )
        .inits(vec![int64s("pads", &[0, 0, 1, 2, 0, 1, 0, 3]), floats("v", &[], vec![1.5])])
        .check().await;
    }
}

gpu_test! {
    async fn identity_dropout_and_cast_pass_values_through() {
        Case::new(
            vec![
                node("Identity", &["x"], "a", vec![]),
                node("Dropout", &["a"], "b", vec![]),
                node("Cast", &["b"], "c", vec![a_i("to", 1)]),
                node("Relu", &["c"], "y", vec![]),
            ],
            vec![("x", vec![2, 5])],
        )
        .check().await;
    }
}

gpu_test! {
    async fn shape_computations_are_folded_away() {
        // Flatten as PyTorch exports it: Shape → Gather → Unsqueeze → Concat
        // → Reshape. None of these shape ops has a GPU kernel; all are folded.
        let gpu = Case::new(
            vec![
                node("Shape", &["x"], "s", vec![]),
                node("Gather", &["s", "zero"], "n", vec![a_i("axis", 0)]),
                node("Unsqueeze", &["n", "ax"], "n1", vec![]),
                node("Concat", &["n1", "minus1"], "shape", vec![a_i("axis", 0)]),
                node("Reshape", &["x", "shape"], "y", vec![]),
            ],
            vec![("x", vec![2, 3, 4, 4])],
        )
        .inits(vec![
            TensorProto {
                name: "zero".into(),
                data_type: 7,
                int64_data: vec![0],
                ..Default::default()
            },
            int64s("ax", &[0]),
            int64s("minus1", &[-1]),
        ])
        .check().await;
        assert_eq!(gpu.program_stats().0, 1, "only the reshape runs");
    }
}

async fn refused(case: Case) -> EngineError {
    case.gpu()
        .await
        .err()
        .expect("the GPU backend should refuse this model")
}

gpu_test! {
    async fn an_op_without_a_kernel_is_named_at_load() {
        let e = refused(Case::new(
            vec![
                node("Relu", &["x"], "r", vec![]),
                node("Round", &["r"], "y", vec![]),
            ],
            vec![("x", vec![2, 3])],
        ))
        .await;
        let EngineError::UnsupportedOp { op, node, detail, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(op, "Round");
        assert_eq!(detail, "no WebGPU kernel, and its output depends on the input");
        assert_eq!(node, "Round_y");
        assert!(e.to_string().contains("on the webgpu backend"), "{e}");
    }
}

gpu_test! {
    async fn unsupported_attributes_are_named_at_load() {
        let e = refused(Case::new(
            vec![node("Pad", &["x", "pads"], "y", vec![a_s("mode", "reflect")])],
            vec![("x", vec![1, 2, 3, 4])],
        )
        .inits(vec![int64s("pads", &[0, 0, 1, 1, 0, 0, 1, 1])]))
        .await;
        assert!(e.to_string().contains("Pad (mode reflect)"), "{e}");

        let e = refused(Case::new(
            vec![node("Relu", &["x"], "y", vec![])],
            vec![("x", vec![1, 2, 3, 4, 5])],
        ))
        .await;
        assert!(e.to_string().contains("rank-5"), "{e}");
    }
}

gpu_test! {
    async fn unary_math_erf_sqrt_reciprocal_exp_neg_abs() {
        for op in ["Erf", "Exp", "Neg", "Abs"] {
            Case::new(vec![node(op, &["x"], "y", vec![])], vec![("x", vec![2, 3, 5])]).check().await;
        }
        // Positive inputs for the square root and the reciprocal.
        for op in ["Sqrt", "Reciprocal"] {
            Case::new(
                vec![node("Abs", &["x"], "a", vec![]), node("Add", &["a", "one"], "p", vec![]), node(op, &["p"], "y", vec![])],
                vec![("x", vec![2, 3, 5])],
            )
            .inits(vec![floats("one", &[], vec![1.0])])
            .check()
            .await;
        }
    }
}

gpu_test! {
    async fn gelu_exact_and_tanh_at_opset_20() {
        for attrs in [vec![], vec![a_s("approximate", "tanh")]] {
            Case::new(vec![node("Gelu", &["x"], "y", attrs)], vec![("x", vec![4, 7])])
                .opset(20)
                .check()
                .await;
        }
    }
}

gpu_test! {
    async fn pow_of_negative_bases_by_constant_exponents() {
        for e in [2.0, 3.0, -1.0, 0.5, 1.5] {
            // 0.5 and 1.5 on |x|: a negative base to a fractional power is NaN
            // on both sides.
            let nodes = if e == 0.5 || e == 1.5 {
                vec![node("Abs", &["x"], "a", vec![]), node("Pow", &["a", "e"], "y", vec![])]
            } else {
                vec![node("Pow", &["x", "e"], "y", vec![])]
            };
            Case::new(nodes, vec![("x", vec![3, 4])])
                .inits(vec![floats("e", &[], vec![e])])
                .tolerance(1e-3)
                .check()
                .await;
        }
    }
}

gpu_test! {
    async fn layer_normalization_over_the_last_axes_with_and_without_bias() {
        for (axis, with_bias) in [(-1i64, true), (-2, true), (-1, false), (1, true)] {
            let x = vec![2, 5, 6];
            let normalised = &x[axis.rem_euclid(3) as usize..];
            let mut inputs = vec!["x", "s"];
            let mut inits = vec![weight("s", normalised, 3)];
            if with_bias {
                inputs.push("b");
                inits.push(weight("b", normalised, 4));
            }
            Case::new(
                vec![node("LayerNormalization", &inputs, "y", vec![a_i("axis", axis), a_f("epsilon", 1e-5)])],
                vec![("x", x.clone())],
            )
            .inits(inits)
            .opset(17)
            .tolerance(1e-3)
            .check()
            .await;
        }
    }
}

gpu_test! {
    async fn gather_at_constant_indices_scalar_vector_and_negative() {
        for (indices, shape, axis) in [(vec![0i64], vec![], 1), (vec![2, 0, -1], vec![3], 1), (vec![-2], vec![], 2)] {
            let mut idx = int64s("i", &indices);
            idx.dims = shape.iter().map(|d: &usize| *d as i64).collect();
            Case::new(vec![node("Gather", &["x", "i"], "y", vec![a_i("axis", axis)])], vec![("x", vec![2, 4, 6])])
                .inits(vec![idx])
                .check()
                .await;
        }
    }
}

gpu_test! {
    async fn slice_with_negative_and_clamped_bounds_and_axes() {
        Case::new(vec![node("Slice", &["x", "s", "e", "a"], "y", vec![])], vec![("x", vec![2, 5, 8])])
            .inits(vec![int64s("s", &[1, -6]), int64s("e", &[i64::MAX, -1]), int64s("a", &[1, -1])])
            .check()
            .await;
    }
}

gpu_test! {
    async fn expand_broadcasts_to_the_shape() {
        Case::new(
            vec![node("Relu", &["x"], "r", vec![]), node("Expand", &["r", "shape"], "y", vec![])],
            vec![("x", vec![1, 3, 1])],
        )
        .inits(vec![int64s("shape", &[2, 3, 4])])
        .check()
        .await;
    }
}

gpu_test! {
    async fn layer_norm_of_a_pooled_tensor_permuted_channels_last() {
        // ConvNeXt's head: GlobalAveragePool, permute to [N,1,1,C], LayerNorm.
        Case::new(
            vec![
                node("GlobalAveragePool", &["x"], "p", vec![]),
                node("Transpose", &["p"], "t", vec![a_ints("perm", &[0, 2, 3, 1])]),
                node("LayerNormalization", &["t", "s", "b"], "y", vec![a_f("epsilon", 1e-6)]),
            ],
            vec![("x", vec![1, 64, 3, 3])],
        )
        .inits(vec![weight("s", &[64], 5), weight("b", &[64], 6)])
        .opset(17)
        .tolerance(1e-3)
        .check()
        .await;
    }
}

gpu_test! {
    async fn attention_style_reshapes_through_rank_5() {
        // torch's packed q/k/v: [T,B,3E] → [T,B,3,E] → [1,T,B,3,E] →
        // transpose(0,-2) → [3,T,B,1,E] → squeeze(-2) → [3,T,B,E].
        Case::new(
            vec![
                node("Relu", &["x"], "r", vec![]),
                node("Reshape", &["r", "s1"], "a", vec![]),
                node("Unsqueeze", &["a", "zero"], "b", vec![]),
                node("Transpose", &["b"], "c", vec![a_ints("perm", &[3, 1, 2, 0, 4])]),
                node("Squeeze", &["c", "three"], "y", vec![]),
            ],
            vec![("x", vec![5, 1, 12])],
        )
        .inits(vec![int64s("s1", &[5, 1, 3, 4]), int64s("zero", &[0]), int64s("three", &[3])])
        .check()
        .await;
    }
}

gpu_test! {
    async fn a_rank_5_tensor_is_refused_by_ops_that_need_its_axes() {
        let e = refused(
            Case::new(
                vec![
                    node("Unsqueeze", &["x", "zero"], "u", vec![]),
                    node("Softmax", &["u"], "y", vec![a_i("axis", -1)]),
                ],
                vec![("x", vec![2, 3, 4, 5])],
            )
            .inits(vec![int64s("zero", &[0])]),
        )
        .await;
        let EngineError::UnsupportedOp { op, detail, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((op.as_str(), detail.as_str()), ("Softmax", "an input of rank 5"));
    }
}

/// Attention's packed q/k/v, `x` reshaped by `qkv` to [B·nW, T, 3, heads, d]
/// and permuted to [3, B·nW, heads, T, d] as `t`.
fn qkv_stack() -> Vec<edgeserve_onnx::pb::NodeProto> {
    vec![
        node("Reshape", &["x", "qkv"], "r", vec![]),
        node("Transpose", &["r"], "t", vec![a_ints("perm", &[2, 0, 3, 1, 4])]),
    ]
}

gpu_test! {
    async fn swin_window_attention_at_ranks_5_and_6() {
        // The window partition: [N, H/w, w, W/w, w, C] (rank 6, five axes
        // longer than 1) permuted (0, 1, 3, 2, 4, 5), and its inverse.
        Case::new(
            vec![
                node("Reshape", &["x", "windows"], "r", vec![]),
                node("Transpose", &["r"], "t", vec![a_ints("perm", &[0, 1, 3, 2, 4, 5])]),
                node("Reshape", &["t", "back"], "y", vec![]),
            ],
            vec![("x", vec![1, 4, 6, 5])],
        )
        .inits(vec![int64s("windows", &[1, 2, 2, 3, 2, 5]), int64s("back", &[6, 4, 5])])
        .check()
        .await;
        // The packed q/k/v over two heads: [B·nW, T, 3, heads, d] permuted
        // (2, 0, 3, 1, 4) moves five groups of axes; k taken out by Gather
        // from the rank-5 result.
        Case::new(
            [qkv_stack(), vec![node("Gather", &["t", "one"], "y", vec![a_i("axis", 0)])]].concat(),
            vec![("x", vec![4, 6, 12])],
        )
        .inits(vec![
            int64s("qkv", &[4, 6, 3, 2, 2]),
            TensorProto {
                name: "one".into(),
                data_type: 7,
                int64_data: vec![1],
                ..TensorProto::default()
            },
        ])
        .check()
        .await;
        // The shifted windows' mask added at rank 5, broadcast over heads.
        Case::new(
            vec![
                node("Reshape", &["x", "heads"], "r", vec![]),
                node("Add", &["r", "mask"], "y", vec![]),
            ],
            vec![("x", vec![8, 4, 4])],
        )
        .inits(vec![
            int64s("heads", &[1, 4, 2, 4, 4]),
            floats("mask", &[1, 4, 1, 4, 4], (0..64).map(|i| -(i % 5) as f32).collect()),
        ])
        .check()
        .await;
    }
}

gpu_test! {
    async fn an_empty_tensor_is_refused_at_load() {
        let e = refused(
            Case::new(
                vec![node("Gather", &["x", "none"], "y", vec![a_i("axis", 1)])],
                vec![("x", vec![2, 3, 4])],
            )
            .inits(vec![int64s("none", &[])]),
        )
        .await;
        let EngineError::UnsupportedOp { op, detail, node, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((op.as_str(), detail.as_str(), node.as_str()), ("an empty tensor", "shape [2, 0, 4]", "y"));
    }
}

/// A node with several outputs.
fn node_out(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> edgeserve_onnx::pb::NodeProto {
    let mut n = node(op, inputs, outputs[0], attrs);
    n.output = outputs.iter().map(|o| o.to_string()).collect();
    n
}

gpu_test! {
    async fn split_by_sizes_in_equal_parts_and_at_rank_5() {
        // Sizes as an input (opset 13); the outputs put back in another order.
        Case::new(
            vec![
                node_out("Split", &["x", "sizes"], &["a", "b", "c"], vec![a_i("axis", 1)]),
                node("Concat", &["c", "a", "b"], "y", vec![a_i("axis", 1)]),
            ],
            vec![("x", vec![2, 7, 3])],
        )
        .inits(vec![int64s("sizes", &[2, 4, 1])])
        .check()
        .await;
        // Equal parts (opset 18's num_outputs), the last one shorter; one
        // output unread.
        Case::new(
            vec![
                node_out("Split", &["x"], &["a", "b", "c"], vec![a_i("axis", -1), a_i("num_outputs", 3)]),
                node("Concat", &["c", "a"], "y", vec![a_i("axis", -1)]),
            ],
            vec![("x", vec![2, 3, 8])],
        )
        .opset(18)
        .check()
        .await;
        // timm's q, k, v: a rank-5 stack split on its first axis.
        Case::new(
            [
                qkv_stack(),
                vec![
                    node_out("Split", &["t"], &["q", "k", "v"], vec![a_i("axis", 0)]),
                    node("Squeeze", &["k", "zero"], "y", vec![]),
                ],
            ]
            .concat(),
            vec![("x", vec![1, 6, 12])],
        )
        .inits(vec![int64s("qkv", &[1, 6, 3, 2, 2]), int64s("zero", &[0])])
        .check()
        .await;
    }
}

gpu_test! {
    async fn slice_with_steps() {
        // Swin's patch merging: every other row and column, from 0 and 1.
        for start in [0, 1] {
            Case::new(
                vec![node("Slice", &["x", "starts", "ends", "axes", "steps"], "y", vec![])],
                vec![("x", vec![1, 6, 7, 3])],
            )
            .inits(vec![
                int64s("starts", &[start, start]),
                int64s("ends", &[i64::MAX, i64::MAX]),
                int64s("axes", &[1, 2]),
                int64s("steps", &[2, 3]),
            ])
            .check()
            .await;
        }
    }
}

gpu_test! {
    async fn element_wise_functions_of_one_tensor_run_at_rank_5() {
        // ShuffleNet's channel shuffle and ViT's packed q/k/v quantised:
        // a QDQ pair on a rank-5 tensor, and a rank-5 graph output.
        Case::new(
            vec![
                node("Reshape", &["x", "s5"], "r", vec![]),
                node("Relu", &["r"], "a", vec![]),
                node("QuantizeLinear", &["a", "s", "zp"], "q", vec![]),
                node("DequantizeLinear", &["q", "s", "zp"], "y", vec![]),
            ],
            vec![("x", vec![1, 6, 4, 5])],
        )
        .inits(vec![
            int64s("s5", &[1, 2, 3, 4, 5]),
            floats("s", &[], vec![0.01]),
            ints8("zp", 2, &[], vec![3]),
        ])
        .opset(13)
        .check()
        .await;
    }
}

/// `DynamicQuantizeLinear` of x into q, with its scale s and zero point zp.
fn dynamic_quantize() -> edgeserve_onnx::pb::NodeProto {
    let mut n = node("DynamicQuantizeLinear", &["x"], "q", vec![]);
    n.output = vec!["q".into(), "s".into(), "zp".into()];
    n
}

/// Deterministic integers in `lo..=hi`, spread over the range.
fn spread(n: usize, lo: i32, hi: i32) -> Vec<i32> {
    (0..n as i32)
        .map(|i| lo + (i * 37 + 11) % (hi - lo + 1))
        .collect()
}

gpu_test! {
    async fn dynamic_quantization_as_onnxruntime_writes_it() {
        // DynamicQuantizeLinear's three outputs, dequantised again: equal
        // to tract's unless a value/scale lands on a different side of .5.
        Case::new(
            vec![
                dynamic_quantize(),
                node("Cast", &["q"], "qf", vec![a_i("to", 1)]),
                node("Cast", &["zp"], "zpf", vec![a_i("to", 1)]),
                node("Sub", &["qf", "zpf"], "d", vec![]),
                node("Mul", &["d", "s"], "y", vec![]),
            ],
            vec![("x", vec![2, 3, 7])],
        )
        .opset(13)
        .check()
        .await;

        // ConvInteger (depthwise 3×3 and a full 1×1, uint8 weights with a
        // zero point per filter) and MatMulInteger (rank-3 A, int8 B with
        // one zero point), after the activation's dynamic quantisation, then
        // the Cast and the rescale the quantiser writes.
        for (w_shape, group, wzp) in [([4usize, 1, 3, 3], 4, vec![128, 120, 131, 127]), ([6, 4, 1, 1], 1, vec![100; 6])] {
            let w_len = w_shape.iter().product();
            Case::new(
                vec![
                    dynamic_quantize(),
                    node("ConvInteger", &["q", "w", "zp", "wzp"], "c", vec![a_i("group", group), a_ints("pads", &[1, 1, 1, 1])]),
                    node("Cast", &["c"], "cf", vec![a_i("to", 1)]),
                    node("Mul", &["cf", "s"], "y", vec![]),
                ],
                vec![("x", vec![1, 4, 6, 6])],
            )
            .inits(vec![ints8("w", 2, &w_shape, spread(w_len, 0, 255)), ints8("wzp", 2, &[w_shape[0]], wzp)])
            .opset(13)
            .check()
            .await;
        }
        Case::new(
            vec![
                dynamic_quantize(),
                node("MatMulInteger", &["q", "b", "zp", "bzp"], "m", vec![]),
                node("Cast", &["m"], "mf", vec![a_i("to", 1)]),
                node("Mul", &["mf", "s"], "y", vec![]),
            ],
            vec![("x", vec![2, 5, 8])],
        )
        .inits(vec![ints8("b", 3, &[8, 6], spread(48, -128, 127)), ints8("bzp", 3, &[], vec![0])])
        .opset(13)
        .check()
        .await;
    }
}

gpu_test! {
    async fn quantize_and_dequantize_a_computed_tensor_u8_and_i8() {
        // The QDQ pair of an int8 model, at scale 0.005: u8 covers 0..1.275
        // (or ±0.64 around 128), i8 ±0.64 (or -0.54..0.74 around -20), so
        // inputs in ±2 saturate at one end or both.
        for (zero_point, zp_type) in [(0i32, 2), (128, 2), (0, 3), (-20, 3)] {
            let zp = ints8("zp", zp_type, &[], vec![zero_point]);
            Case::new(
                vec![
                    node("QuantizeLinear", &["x", "s", "zp"], "q", vec![]),
                    node("DequantizeLinear", &["q", "s", "zp"], "y", vec![]),
                ],
                vec![("x", vec![2, 3, 40])],
            )
            .inits(vec![floats("s", &[], vec![0.005]), zp])
            .opset(13)
            .check()
            .await;
        }
    }
}

gpu_test! {
    async fn per_axis_quantization_of_a_computed_tensor_is_refused_by_name() {
        let e = refused(
            Case::new(
                vec![
                    node("Relu", &["x"], "r", vec![]),
                    node("QuantizeLinear", &["r", "s"], "y", vec![a_i("axis", 1)]),
                ],
                vec![("x", vec![2, 3])],
            )
            .inits(vec![floats("s", &[3], vec![0.1, 0.2, 0.3])])
            .opset(13),
        )
        .await;
        let EngineError::UnsupportedOp { op, detail, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!((op.as_str(), detail.as_str()), ("QuantizeLinear", "per-axis scales on a computed tensor"));
    }
}
