//! Classify and regress as gRPC messages: `tf.Example` inputs and their
//! results, converted to and from the REST types so that both transports
//! run the same code behind them.

use crate::pb::tensorflow as tf;
use crate::pb::tensorflow::serving as tfs;
use crate::{Class, ClassifyResponse, Error, Example, ExamplesRequest, Feature, ModelSpec, RegressResponse};

fn feature_from_proto(f: &tf::Feature) -> Feature {
    match &f.kind {
        None => Feature::Empty,
        Some(tf::feature::Kind::BytesList(l)) => Feature::Bytes(l.value.clone()),
        Some(tf::feature::Kind::FloatList(l)) => Feature::Float(l.value.clone()),
        Some(tf::feature::Kind::Int64List(l)) => Feature::Int64(l.value.clone()),
    }
}

fn feature_to_proto(f: &Feature) -> tf::Feature {
    tf::Feature {
        kind: match f {
            Feature::Empty => None,
            Feature::Bytes(v) => Some(tf::feature::Kind::BytesList(tf::BytesList { value: v.clone() })),
            Feature::Float(v) => Some(tf::feature::Kind::FloatList(tf::FloatList { value: v.clone() })),
            Feature::Int64(v) => Some(tf::feature::Kind::Int64List(tf::Int64List { value: v.clone() })),
        },
    }
}

fn example_from_proto(e: &tf::Example) -> Example {
    Example {
        features: e
            .features
            .iter()
            .flat_map(|f| &f.feature)
            .map(|(k, f)| (k.clone(), feature_from_proto(f)))
            .collect(),
    }
}

fn example_to_proto(e: &Example) -> tf::Example {
    tf::Example {
        features: Some(tf::Features {
            feature: e
                .features
                .iter()
                .map(|(k, f)| (k.clone(), feature_to_proto(f)))
                .collect(),
        }),
    }
}

/// How many values an example's features hold (each bytes value, float and
/// int64 counts one).
fn values_in(e: &tf::Example) -> usize {
    e.features
        .iter()
        .flat_map(|f| f.feature.values())
        .fold(0usize, |n, f| {
            n.saturating_add(match &f.kind {
                None => 0,
                Some(tf::feature::Kind::BytesList(l)) => l.value.len(),
                Some(tf::feature::Kind::FloatList(l)) => l.value.len(),
                Some(tf::feature::Kind::Int64List(l)) => l.value.len(),
            })
        })
}

impl ExamplesRequest {
    /// The model spec and the request a gRPC `ClassificationRequest` or
    /// `RegressionRequest` carries (its `model_spec` and `input`). An input
    /// with no examples is refused as TF Serving does; one whose features
    /// hold more than `max_values` values in all is refused before they are
    /// copied.
    pub fn from_proto(
        model_spec: Option<&tfs::ModelSpec>,
        input: Option<&tfs::Input>,
        max_values: usize,
    ) -> Result<(ModelSpec, ExamplesRequest), Error> {
        let spec = model_spec.map(ModelSpec::from).unwrap_or_default();
        let (examples, context) = match input.and_then(|i| i.kind.as_ref()) {
            None => return Err(Error::invalid_argument("Input is empty.")),
            Some(tfs::input::Kind::ExampleList(l)) => (&l.examples, None),
            Some(tfs::input::Kind::ExampleListWithContext(l)) => (&l.examples, l.context.as_ref()),
        };
        if examples.is_empty() {
            return Err(Error::invalid_argument("Input is empty."));
        }
        let values = examples
            .iter()
            .chain(context)
            .fold(0usize, |n, e| n.saturating_add(values_in(e)));
        if values > max_values {
            return Err(Error::invalid_argument(format!(
                "The request's examples hold {values} feature values, more than the {max_values} allowed"
            )));
        }
        let signature_name = (!spec.signature_name.is_empty()).then(|| spec.signature_name.clone());
        Ok((
            spec,
            ExamplesRequest {
                signature_name,
                context: context.map(example_from_proto),
                examples: examples.iter().map(example_from_proto).collect(),
            },
        ))
    }

    /// The request's examples as a gRPC `Input` (with its context when it
    /// has one).
    pub fn to_proto_input(&self) -> tfs::Input {
        let examples = self.examples.iter().map(example_to_proto).collect();
        tfs::Input {
            kind: Some(match &self.context {
                None => tfs::input::Kind::ExampleList(tfs::ExampleList { examples }),
                Some(c) => tfs::input::Kind::ExampleListWithContext(tfs::ExampleListWithContext {
                    examples,
                    context: Some(example_to_proto(c)),
                }),
            }),
        }
    }
}

impl ClassifyResponse {
    /// The gRPC message for this response from `model`.
    pub fn to_proto(&self, model: Option<&ModelSpec>) -> tfs::ClassificationResponse {
        tfs::ClassificationResponse {
            model_spec: model.map(tfs::ModelSpec::from),
            result: Some(tfs::ClassificationResult {
                classifications: self
                    .results
                    .iter()
                    .map(|classes| tfs::Classifications {
                        classes: classes
                            .iter()
                            .map(|c| tfs::Class {
                                label: c.label.clone(),
                                score: c.score,
                            })
                            .collect(),
                    })
                    .collect(),
            }),
        }
    }

    /// The response a gRPC message carries.
    pub fn from_proto(p: &tfs::ClassificationResponse) -> ClassifyResponse {
        ClassifyResponse {
            results: p
                .result
                .iter()
                .flat_map(|r| &r.classifications)
                .map(|c| {
                    c.classes
                        .iter()
                        .map(|c| Class {
                            label: c.label.clone(),
                            score: c.score,
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

impl RegressResponse {
    /// The gRPC message for this response from `model`.
    pub fn to_proto(&self, model: Option<&ModelSpec>) -> tfs::RegressionResponse {
        tfs::RegressionResponse {
            model_spec: model.map(tfs::ModelSpec::from),
            result: Some(tfs::RegressionResult {
                regressions: self
                    .results
                    .iter()
                    .map(|&value| tfs::Regression { value })
                    .collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn request() -> ExamplesRequest {
        let example = |x: f32| Example {
            features: BTreeMap::from([
                ("x".to_owned(), Feature::Float(vec![x])),
                ("id".to_owned(), Feature::Int64(vec![7, -1])),
                ("img".to_owned(), Feature::Bytes(vec![vec![0xff, 0]])),
                ("none".to_owned(), Feature::Empty),
            ]),
        };
        ExamplesRequest {
            signature_name: Some("regress_x_to_y".into()),
            context: Some(example(0.5)),
            examples: vec![example(1.0), example(2.0)],
        }
    }

    #[test]
    fn examples_round_trip_through_the_grpc_input() {
        let r = request();
        let spec = tfs::ModelSpec {
            name: "m".into(),
            signature_name: "regress_x_to_y".into(),
            version_choice: None,
        };
        let (model, back) = ExamplesRequest::from_proto(Some(&spec), Some(&r.to_proto_input()), 100).unwrap();
        assert_eq!(model.name, "m");
        assert_eq!(back, r);
        let without_context = ExamplesRequest { context: None, ..r };
        let (_, back) =
            ExamplesRequest::from_proto(Some(&spec), Some(&without_context.to_proto_input()), 100).unwrap();
        assert_eq!(back, without_context);
    }

    #[test]
    fn empty_and_oversized_inputs_are_refused_before_copying() {
        let none = ExamplesRequest::from_proto(None, None, 100).unwrap_err();
        assert_eq!(none.message(), "Input is empty.");
        let empty = tfs::Input {
            kind: Some(tfs::input::Kind::ExampleList(tfs::ExampleList {
                examples: vec![],
            })),
        };
        let e = ExamplesRequest::from_proto(None, Some(&empty), 100).unwrap_err();
        assert_eq!(e.message(), "Input is empty.");
        // Each example holds 4 values (a float, two int64s, one bytes
        // value), and so does the context: 12 in all.
        let input = request().to_proto_input();
        assert!(ExamplesRequest::from_proto(None, Some(&input), 12).is_ok());
        let e = ExamplesRequest::from_proto(None, Some(&input), 11).unwrap_err();
        assert_eq!(e.code(), crate::Code::InvalidArgument);
        assert!(e.message().contains("12 feature values, more than the 11"), "{e}");
    }

    #[test]
    fn results_become_the_grpc_messages() {
        let c = ClassifyResponse {
            results: vec![vec![Class {
                label: "cat".into(),
                score: 0.75,
            }]],
        };
        let p = c.to_proto(None);
        assert_eq!(
            p.result.as_ref().unwrap().classifications[0].classes[0].label,
            "cat"
        );
        assert_eq!(ClassifyResponse::from_proto(&p), c);
        let r = RegressResponse {
            results: vec![2.5, 3.0],
        };
        let values: Vec<f32> = r
            .to_proto(None)
            .result
            .unwrap()
            .regressions
            .iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(values, [2.5, 3.0]);
    }
}
