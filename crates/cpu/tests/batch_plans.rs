//! Batch sizes over 1 on a model whose batch is free: each runs on a plan
//! made for its size while [`CpuOptions::batch_plans`] allows, the least
//! recently used evicted, and on the shared free-batch plan beyond that;
//! every size answers as batch 1 does, row for row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::Tensor;

fn half_plus_two(batch_plans: usize) -> CpuEngine {
    let options = CpuOptions {
        batch_plans: Some(batch_plans),
        ..CpuOptions::default()
    };
    CpuEngine::load(&edgeserve_testkit::onnx::half_plus_two(), &options).unwrap()
}

fn run(engine: &CpuEngine, x: Vec<f32>) -> Vec<f32> {
    let n = x.len();
    let inputs = NamedTensors::from([("x".to_owned(), Tensor::from_vec(vec![n], x).unwrap())]);
    let out = engine.run_blocking(inputs).unwrap();
    let y = out.get("y").unwrap();
    assert_eq!(y.shape(), [n]);
    y.as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn sizes_past_the_kept_plans_answer_as_batch_one_does() {
    // Sizes that come back after their plan was evicted, and more sizes
    // than are kept: with two plans kept, with none (the free plan only),
    // and with more than are asked for.
    for kept in [2, 0, 8] {
        let engine = half_plus_two(kept);
        for n in [2usize, 3, 4, 2, 5, 3, 7, 1, 2] {
            let x: Vec<f32> = (0..n).map(|i| i as f32 - 1.5).collect();
            let want: Vec<f32> = x.iter().map(|v| 0.5 * v + 2.0).collect();
            assert_eq!(run(&engine, x), want, "batch {n} with {kept} plans kept");
        }
    }
}

/// A classifier head, `[batch, 300] → Gemm → [batch, 37]`, with its batch
/// left free: each image of every size, on its own plan or on the free
/// one, answers to the bit as it does in a batch of one (the head runs on
/// edgeserve's matrix–vector kernel natively, whatever the size).
#[test]
fn a_classifier_head_answers_each_image_as_batch_one_does_on_every_plan() {
    use edgeserve_onnx::pb::tensor_shape_proto::dimension;
    use edgeserve_testkit::onnx::{gemm_head, values};
    use prost::Message;
    let (k, n) = (300usize, 37usize);
    let g = gemm_head(1, k, n);
    // The first dimension of the input and of the output left free.
    let mut proto = edgeserve_onnx::pb::ModelProto::decode(&g.bytes()[..]).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    for info in graph.input.iter_mut().chain(graph.output.iter_mut()) {
        let Some(edgeserve_onnx::pb::type_proto::Value::TensorType(t)) =
            info.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            panic!("{info:?}: not a tensor")
        };
        t.shape.as_mut().unwrap().dim[0].value = Some(dimension::Value::DimParam("batch".into()));
    }
    let bytes = proto.encode_to_vec();
    let image = |i: usize| values(k, 100 + i as u64);
    for kept in [2, 0] {
        let engine = CpuEngine::load(
            &bytes,
            &CpuOptions {
                batch_plans: Some(kept),
                ..CpuOptions::default()
            },
        )
        .unwrap();
        let run = |images: &[usize]| -> Vec<f32> {
            let x: Vec<f32> = images.iter().flat_map(|&i| image(i)).collect();
            let inputs = NamedTensors::from([(
                "x".to_owned(),
                Tensor::from_vec(vec![images.len(), k], x).unwrap(),
            )]);
            let out = engine.run_blocking(inputs).unwrap();
            let y = out.get("y").unwrap();
            assert_eq!(y.shape(), [images.len(), n]);
            y.as_slice::<f32>().unwrap().to_vec()
        };
        // The kernel ran on batch 1's plan and on a batch's (its own, or
        // with none kept the free one).
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            for images in [1usize, 3] {
                let x = Tensor::from_vec(vec![images, k], values(images * k, 9)).unwrap();
                let ops: Vec<String> = engine
                    .profile(NamedTensors::from([("x".to_owned(), x)]))
                    .unwrap()
                    .into_iter()
                    .map(|o| o.op)
                    .collect();
                assert!(
                    ops.iter().any(|o| o == "EdgeserveGemv"),
                    "batch {images} with {kept} plans kept ran {ops:?}"
                );
            }
        }
        let alone: Vec<Vec<f32>> = (0..7).map(|i| run(&[i])).collect();
        for images in [&[0, 1][..], &[2, 3, 4], &[5, 6, 0, 1, 2], &[3, 4]] {
            let batch = run(images);
            for (row, &i) in batch.chunks(n).zip(images) {
                assert_eq!(
                    row,
                    &alone[i][..],
                    "image {i} in a batch of {} with {kept} plans kept",
                    images.len()
                );
            }
        }
    }
}
