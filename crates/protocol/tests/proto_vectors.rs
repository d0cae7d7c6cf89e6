//! Wire compatibility with the official `tensorflow-serving-api` Python
//! package: the vectors in `shared/fixtures/tf-serving-proto/` are decoded,
//! every field checked, and re-encoded to the same bytes.

// Tests fail by panicking; helpers outside #[test] fns are tests too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_protocol::pb::tensorflow::serving as tfs;
use edgeserve_protocol::pb::tensorflow::{DataType as PbDataType, TensorProto};
use edgeserve_protocol::{
    DataType, Format, Inputs, ModelSpec, PredictRequest, PredictResponse, Tensor, TensorTypes,
    VersionSelector,
};
use edgeserve_testkit::shared;
use prost::Message;

fn f32_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn shape(p: &TensorProto) -> Vec<i64> {
    p.tensor_shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| d.size)
        .collect()
}

#[test]
fn predict_request_with_tensor_content() {
    let bytes = shared("fixtures/tf-serving-proto/predict_request.bin");
    assert_eq!(bytes.len(), 602_192);
    let msg = tfs::PredictRequest::decode(&bytes[..]).unwrap();
    let spec = msg.model_spec.as_ref().unwrap();
    assert_eq!(spec.name, "efficientnet-lite0");
    assert_eq!(spec.signature_name, "serving_default");
    assert_eq!(spec.version_choice, None);
    assert!(msg.output_filter.is_empty());
    assert_eq!(msg.inputs.len(), 1);
    let input = &msg.inputs["input"];
    assert_eq!(input.dtype, PbDataType::DtFloat as i32);
    assert_eq!(shape(input), [1, 224, 224, 3]);
    // The content is the chelsea tensor transposed from NCHW to NHWC.
    let nchw = f32_le(&shared("fixtures/inputs/chelsea_224_nchw_f32le.bin"));
    let nhwc = f32_le(&input.tensor_content);
    let (h, w) = (224, 224);
    for c in 0..3 {
        for y in (0..h).step_by(37) {
            for x in 0..w {
                assert_eq!(
                    nhwc[(y * w + x) * 3 + c],
                    nchw[(c * h + y) * w + x],
                    "c{c} y{y} x{x}"
                );
            }
        }
    }
    assert_eq!(msg.encode_to_vec(), bytes, "re-encoding changed the bytes");

    // Through the REST types and back: same message, same bytes.
    let (spec, req) = PredictRequest::from_proto(&msg).unwrap();
    assert_eq!(spec.name, "efficientnet-lite0");
    assert_eq!(req.signature(), "serving_default");
    let Inputs::Named(inputs) = &req.inputs else {
        panic!("named inputs expected")
    };
    assert_eq!(inputs["input"].shape(), &[1, 224, 224, 3]);
    assert_eq!(inputs["input"].as_slice::<f32>().unwrap(), &nhwc[..]);
    let types = TensorTypes::from([("input".to_owned(), DataType::Float)]);
    let again = req
        .to_proto(
            &ModelSpec {
                signature_name: String::new(),
                ..spec
            },
            &types,
        )
        .unwrap();
    assert_eq!(again.encode_to_vec(), bytes);
}

#[test]
fn small_predict_request_with_float_val_version_and_output_filter() {
    let bytes = shared("fixtures/tf-serving-proto/predict_request_small_floatval.bin");
    let msg = tfs::PredictRequest::decode(&bytes[..]).unwrap();
    let spec = msg.model_spec.as_ref().unwrap();
    assert_eq!(spec.name, "tiny");
    assert_eq!(
        spec.version_choice,
        Some(tfs::model_spec::VersionChoice::Version(7))
    );
    assert_eq!(msg.output_filter, ["logits"]);
    let x = &msg.inputs["x"];
    assert_eq!(x.dtype, PbDataType::DtFloat as i32);
    assert_eq!(shape(x), [1, 2, 2, 3]);
    let want: Vec<f32> = (0..12).map(|i| -1.0 + 0.5 * i as f32).collect();
    assert_eq!(x.float_val, want);
    assert!(x.tensor_content.is_empty());
    assert_eq!(msg.encode_to_vec(), bytes);

    let (spec, _) = PredictRequest::from_proto(&msg).unwrap();
    assert_eq!(spec.version, Some(VersionSelector::Number(7)));
    let t = Tensor::from_proto(x).unwrap();
    assert_eq!(t.shape(), &[1, 2, 2, 3]);
    assert_eq!(t.as_slice::<f32>().unwrap(), &want[..]);
    // Our encoding uses tensor_content; it decodes to the same tensor.
    assert_eq!(Tensor::from_proto(&t.to_proto()).unwrap(), t);
}

#[test]
fn predict_response_with_logits() {
    let bytes = shared("fixtures/tf-serving-proto/predict_response.bin");
    let msg = tfs::PredictResponse::decode(&bytes[..]).unwrap();
    let spec = msg.model_spec.as_ref().unwrap();
    assert_eq!(
        spec.version_choice,
        Some(tfs::model_spec::VersionChoice::Version(1))
    );
    let logits = &msg.outputs["logits"];
    assert_eq!(logits.dtype, PbDataType::DtFloat as i32);
    assert_eq!(shape(logits), [1, 1000]);
    let got = f32_le(&logits.tensor_content);

    let reference: serde_json::Value =
        serde_json::from_slice(&shared("fixtures/reference_onnxruntime.json")).unwrap();
    let want = reference["models"]["efficientnet-lite0.onnx"]["results"]["chelsea"]["logits"]
        .as_array()
        .unwrap();
    assert_eq!(want.len(), 1000);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // The JSON reference prints 6 significant digits.
        let w = w.as_f64().unwrap() as f32;
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "logit {i}: {g} vs {w}");
    }
    assert_eq!(msg.encode_to_vec(), bytes);

    let resp = PredictResponse::from_proto(&msg, Format::Row).unwrap();
    assert_eq!(resp.outputs["logits"].as_slice::<f32>().unwrap(), &got[..]);
    let spec = ModelSpec::from(spec);
    assert_eq!(resp.to_proto(Some(&spec)).encode_to_vec(), bytes);
    // And the same tensor through REST JSON and back.
    let types = TensorTypes::from([("logits".to_owned(), DataType::Float)]);
    let back = PredictResponse::from_json(&resp.to_json().unwrap(), &types).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn malformed_tensor_protos_are_typed_errors() {
    let mut p = Tensor::from_vec(vec![2, 2], vec![1.0f32; 4]).unwrap().to_proto();
    p.tensor_content.pop();
    let e = Tensor::from_proto(&p).unwrap_err();
    assert_eq!(
        e.message(),
        "Unable to parse tensor proto: tensor_content has 15 bytes but shape [2,2] of float needs 16"
    );
    let mut p = TensorProto {
        dtype: PbDataType::DtFloat as i32,
        ..Default::default()
    };
    p.tensor_shape = Some(Default::default());
    p.float_val = vec![1.0, 2.0];
    assert_eq!(
        Tensor::from_proto(&p).unwrap_err().message(),
        "Unable to parse tensor proto: float_val has 2 values for a tensor of 1 elements"
    );
    p.dtype = PbDataType::DtComplex64 as i32;
    let e = Tensor::from_proto(&p).unwrap_err();
    assert_eq!(e.message(), "Unsupported tensor dtype: DT_COMPLEX64");
    assert_eq!(e.http_status(), 501);
    let mut p = Tensor::scalar(1i32).to_proto();
    p.tensor_shape.as_mut().unwrap().dim.push(Default::default());
    p.tensor_shape.as_mut().unwrap().dim[0].size = -1;
    assert!(Tensor::from_proto(&p).unwrap_err().message().contains("negative"));
    // A tiny message may not ask for an enormous tensor.
    let mut p = TensorProto {
        dtype: PbDataType::DtFloat as i32,
        float_val: vec![1.0],
        ..Default::default()
    };
    p.tensor_shape = Some(edgeserve_protocol::pb::tensorflow::TensorShapeProto {
        dim: vec![Default::default(); 2]
            .into_iter()
            .map(
                |mut d: edgeserve_protocol::pb::tensorflow::tensor_shape_proto::Dim| {
                    d.size = 1 << 20;
                    d
                },
            )
            .collect(),
        unknown_rank: false,
    });
    assert!(
        Tensor::from_proto(&p)
            .unwrap_err()
            .message()
            .contains("more than")
    );
}

#[test]
fn short_typed_fields_repeat_the_last_value_as_tensorflow_does() {
    let mut p = TensorProto {
        dtype: PbDataType::DtInt32 as i32,
        int_val: vec![1, 2],
        ..Default::default()
    };
    p.tensor_shape = Some(edgeserve_protocol::pb::tensorflow::TensorShapeProto {
        dim: vec![edgeserve_protocol::pb::tensorflow::tensor_shape_proto::Dim {
            size: 4,
            name: String::new(),
        }],
        unknown_rank: false,
    });
    assert_eq!(
        Tensor::from_proto(&p).unwrap().as_slice::<i32>().unwrap(),
        &[1, 2, 2, 2]
    );
    p.int_val.clear();
    assert_eq!(
        Tensor::from_proto(&p).unwrap().as_slice::<i32>().unwrap(),
        &[0, 0, 0, 0]
    );
}
