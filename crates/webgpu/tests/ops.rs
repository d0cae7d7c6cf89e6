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
                node("Erf", &["r"], "y", vec![]),
            ],
            vec![("x", vec![2, 3])],
        ))
        .await;
        let EngineError::UnsupportedOp { op, node, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(op.starts_with("Erf"), "{op}");
        assert_eq!(node, "Erf_y");
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
