//! Property tests: every dtype survives REST JSON (both formats, requests and
//! responses) and protobuf unchanged.

// Tests fail by panicking; helpers outside #[test] fns are tests too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_protocol::half::{bf16, f16};
use edgeserve_protocol::pb::tensorflow::TensorProto;
use edgeserve_protocol::{
    DataType, Format, Inputs, PredictRequest, PredictResponse, Tensor, TensorData, TensorTypes,
};
use proptest::prelude::*;
use prost::Message;

/// Equality that treats NaN as equal to NaN (bit patterns of NaN payloads
/// are not part of the JSON contract) and keeps the sign of zero.
fn same(a: &Tensor, b: &Tensor) -> bool {
    fn f(x: f64, y: f64) -> bool {
        (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
    }
    a.shape() == b.shape()
        && match (a.data(), b.data()) {
            (TensorData::Float(x), TensorData::Float(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| f(f64::from(*p), f64::from(*q)))
            }
            (TensorData::Double(x), TensorData::Double(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| f(*p, *q))
            }
            (TensorData::Half(x), TensorData::Half(y)) => {
                x.iter().map(|v| v.to_bits()).eq(y.iter().map(|v| v.to_bits()))
            }
            (TensorData::Bfloat16(x), TensorData::Bfloat16(y)) => {
                x.iter().map(|v| v.to_bits()).eq(y.iter().map(|v| v.to_bits()))
            }
            (x, y) => x == y,
        }
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(-0.0f32),
        -1e6f32..1e6f32,
    ]
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), Just(f64::NEG_INFINITY), -1e6f64..1e6f64]
}

/// Data of `n` elements for a dtype the REST codec carries.
fn rest_data(dtype: DataType, n: usize) -> BoxedStrategy<TensorData> {
    use proptest::collection::vec;
    match dtype {
        DataType::Float => vec(any_f32(), n).prop_map(TensorData::Float).boxed(),
        DataType::Double => vec(any_f64(), n).prop_map(TensorData::Double).boxed(),
        DataType::Int8 => vec(any::<i8>(), n).prop_map(TensorData::Int8).boxed(),
        DataType::Int16 => vec(any::<i16>(), n).prop_map(TensorData::Int16).boxed(),
        DataType::Int32 => vec(any::<i32>(), n).prop_map(TensorData::Int32).boxed(),
        DataType::Int64 => vec(any::<i64>(), n).prop_map(TensorData::Int64).boxed(),
        DataType::Uint8 => vec(any::<u8>(), n).prop_map(TensorData::Uint8).boxed(),
        DataType::Uint32 => vec(any::<u32>(), n).prop_map(TensorData::Uint32).boxed(),
        DataType::Uint64 => vec(any::<u64>(), n).prop_map(TensorData::Uint64).boxed(),
        DataType::Bool => vec(any::<bool>(), n).prop_map(TensorData::Bool).boxed(),
        DataType::String => vec(vec(any::<u8>(), 0..6), n)
            .prop_map(TensorData::String)
            .boxed(),
        DataType::Uint16 => vec(any::<u16>(), n).prop_map(TensorData::Uint16).boxed(),
        DataType::Half => vec(any::<u16>(), n)
            .prop_map(|v| TensorData::Half(v.into_iter().map(f16::from_bits).collect()))
            .boxed(),
        DataType::Bfloat16 => vec(any::<u16>(), n)
            .prop_map(|v| TensorData::Bfloat16(v.into_iter().map(bf16::from_bits).collect()))
            .boxed(),
    }
}

const REST_DTYPES: [DataType; 11] = [
    DataType::Float,
    DataType::Double,
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::Uint8,
    DataType::Uint32,
    DataType::Uint64,
    DataType::Bool,
    DataType::String,
];

/// A tensor of a given dtype with a batch dimension of at least one.
fn batched(dtype: DataType) -> impl Strategy<Value = Tensor> {
    (1usize..4, proptest::collection::vec(0usize..4, 0..3)).prop_flat_map(move |(batch, inner)| {
        let mut shape = vec![batch];
        shape.extend(inner);
        let n: usize = shape.iter().product();
        rest_data(dtype, n).prop_map(move |d| Tensor::new(shape.clone(), d).unwrap())
    })
}

fn any_shape_tensor(dtypes: &'static [DataType]) -> impl Strategy<Value = Tensor> {
    (
        proptest::sample::select(dtypes),
        proptest::collection::vec(0usize..4, 0..4),
    )
        .prop_flat_map(|(dtype, shape)| {
            let n: usize = shape.iter().product();
            rest_data(dtype, n).prop_map(move |d| Tensor::new(shape.clone(), d).unwrap())
        })
}

/// Whether JSON can carry this shape: no dimension may follow a 0 (a list's
/// shape is read from its first element).
fn json_can_carry(shape: &[usize]) -> bool {
    shape
        .iter()
        .position(|&d| d == 0)
        .is_none_or(|z| z + 1 == shape.len())
}

/// The shape TF Serving reads back for nested lists written from `shape`.
fn shape_read_back(shape: &[usize]) -> Vec<usize> {
    match shape.iter().position(|&d| d == 0) {
        Some(z) => shape[..=z].to_vec(),
        None => shape.to_vec(),
    }
}

fn types(name: &str, dtype: DataType) -> TensorTypes {
    TensorTypes::from([(name.to_owned(), dtype)])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn columnar_requests_round_trip(t in any_shape_tensor(&REST_DTYPES)) {
        let dtype = t.dtype();
        let req = PredictRequest { signature_name: None, format: Format::Columnar, inputs: Inputs::Single(t.clone()) };
        if !json_can_carry(t.shape()) {
            let e = req.to_json().unwrap_err();
            prop_assert!(e.message().contains("cannot be written as JSON"), "{}", e);
            return Ok(());
        }
        let body = req.to_json().unwrap();
        let back = PredictRequest::from_json(&body, |_| Ok(types("x", dtype))).unwrap();
        let Inputs::Single(got) = back.inputs else { panic!("single input expected") };
        prop_assert!(same(&got, &t), "{} -> {:?}", String::from_utf8_lossy(&body), got);
    }

    #[test]
    fn row_requests_round_trip(t in proptest::sample::select(&REST_DTYPES[..]).prop_flat_map(batched)) {
        let dtype = t.dtype();
        let req = PredictRequest::instances(t.clone());
        if !json_can_carry(&t.shape()[1..]) {
            prop_assert!(req.to_json().is_err());
            return Ok(());
        }
        let body = req.to_json().unwrap();
        let back = PredictRequest::from_json(&body, |_| Ok(types("x", dtype))).unwrap();
        let Inputs::Single(got) = back.inputs else { panic!("single input expected") };
        prop_assert!(same(&got, &t), "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn named_row_responses_round_trip(
        a in batched(DataType::Float),
        b_bytes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5), 1..4),
    ) {
        // Give both outputs the same batch.
        let batch = a.shape()[0];
        let b: Vec<Vec<u8>> = (0..batch).map(|i| b_bytes[i % b_bytes.len()].clone()).collect();
        let b = Tensor::from_vec(vec![batch], b).unwrap();
        let resp = PredictResponse {
            format: Format::Row,
            outputs: [("a".to_owned(), a.clone()), ("b_bytes".to_owned(), b.clone())].into(),
        };
        let sig = TensorTypes::from([("a".to_owned(), DataType::Float), ("b_bytes".to_owned(), DataType::String)]);
        let back = PredictResponse::from_json(&resp.to_json().unwrap(), &sig).unwrap();
        // Responses are written as TF Serving writes them, so a shape JSON
        // cannot carry comes back as TF Serving's readers would see it.
        let mut want_shape = vec![batch];
        want_shape.extend(shape_read_back(&a.shape()[1..]));
        prop_assert_eq!(back.outputs["a"].shape(), &want_shape[..]);
        if json_can_carry(&a.shape()[1..]) {
            prop_assert!(same(&back.outputs["a"], &a));
        }
        prop_assert_eq!(&back.outputs["b_bytes"], &b);
    }

    #[test]
    fn every_dtype_round_trips_through_protobuf(t in any_shape_tensor(&DataType::ALL)) {
        let wire = t.to_proto().encode_to_vec();
        let back = Tensor::from_proto(&TensorProto::decode(&wire[..]).unwrap()).unwrap();
        prop_assert!(same(&back, &t));
    }

    #[test]
    fn f32_text_reads_back_to_the_same_value(v in any::<f32>()) {
        let t = Tensor::from_vec(vec![1], vec![v]).unwrap();
        let resp = PredictResponse { format: Format::Columnar, outputs: [("y".to_owned(), t.clone())].into() };
        let back = PredictResponse::from_json(&resp.to_json().unwrap(), &types("y", DataType::Float)).unwrap();
        prop_assert!(same(&back.outputs["y"], &t));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = PredictRequest::from_json(&body, |_| Ok(types("x", DataType::Float)));
        let _ = edgeserve_protocol::ExamplesRequest::from_json(&body);
        let _ = PredictResponse::from_json(&body, &types("x", DataType::Float));
    }

    #[test]
    fn json_shaped_noise_never_panics_the_parsers(body in "[\\[\\]{}\":,0-9a-zA-Z.eE+\\- ]{0,48}") {
        let body = format!(r#"{{"instances": {body}"#);
        let _ = PredictRequest::from_json(body.as_bytes(), |_| Ok(types("x", DataType::String)));
        let body2 = format!(r#"{{"examples": [{{"f": {body}"#);
        let _ = edgeserve_protocol::ExamplesRequest::from_json(body2.as_bytes());
    }
}
