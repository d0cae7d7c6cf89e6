//! TF Serving's operations on typed requests, whatever carried them: the
//! REST handler ([`crate::handler`]) parses JSON into these types and the
//! native server's gRPC services convert protobuf messages into them, and
//! both call the functions here, so the two transports cannot drift apart
//! in which servable answers, what it checks or what it says when it
//! refuses.

use crate::models::{Model, ModelStore, Servable};
use edgeserve::protocol::{
    Class, ClassifyResponse, Error, Example, ExamplesRequest, Feature, ModelMetadataResponse,
    ModelStatusResponse, ModelVersionStatus, PredictRequest, PredictResponse, RegressResponse, SignatureDef,
    VersionSelector, quote,
};
use edgeserve::{Classifier, ImageInput};
use std::sync::Arc;

/// The servable a request names: the latest version of `model` when it
/// names none, else the version number or label it gives, with TF
/// Serving's errors.
pub fn servable(
    store: &ModelStore,
    model: &str,
    version: Option<&VersionSelector>,
) -> Result<Arc<Servable>, Error> {
    let entry = store.model(model);
    let version = match version {
        None => None,
        Some(VersionSelector::Number(v)) => Some(*v),
        Some(VersionSelector::Label(l)) => Some(entry.and_then(|m| m.label(l)).ok_or_else(|| {
            Error::invalid_argument(format!("Unrecognized servable version label: {}", quote(l)))
        })?),
    };
    let found = match version {
        None => entry.and_then(|m| m.latest()),
        Some(v) => entry.and_then(|m| m.version(v)),
    };
    found.cloned().ok_or_else(|| {
        Error::not_found(match version {
            None => format!("Servable not found for request: Latest({})", quote(model)),
            Some(v) => format!("Servable not found for request: Specific({}, {v})", quote(model)),
        })
    })
}

/// The state of every version of `model` (newest first), or of the one
/// version asked for.
pub fn status(
    store: &ModelStore,
    model: &str,
    version: Option<&VersionSelector>,
) -> Result<ModelStatusResponse, Error> {
    let entry = store.model(model);
    let states = entry
        .map(|m| m.states())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::not_found(format!("Could not find any versions of model {}", quote(model))))?;
    let one = |v: i64| {
        states
            .get_key_value(&v)
            .map(|kv| vec![kv])
            .ok_or_else(|| Error::not_found(format!("Could not find version {v} of model {}", quote(model))))
    };
    let wanted = match version {
        None => states.iter().rev().collect(),
        Some(VersionSelector::Number(v)) => one(*v)?,
        Some(VersionSelector::Label(l)) => {
            let v = entry.and_then(|m| m.label(l)).ok_or_else(|| {
                Error::invalid_argument(format!("Unrecognized servable version label: {}", quote(l)))
            })?;
            one(v)?
        }
    };
    Ok(ModelStatusResponse {
        model_version_status: wanted
            .into_iter()
            .map(|(version, s)| ModelVersionStatus {
                version: *version,
                state: s.state,
                status: s.status.clone(),
            })
            .collect(),
    })
}

/// The servable's metadata: its model spec and signatures.
pub fn metadata(servable: &Servable) -> &ModelMetadataResponse {
    &servable.metadata
}

/// The signature `name` of the servable (the default one when `name` is
/// `None` or empty), with TF Serving's error when it has no such signature.
pub fn signature<'a>(servable: &'a Servable, name: Option<&str>) -> Result<&'a SignatureDef, Error> {
    servable
        .metadata
        .metadata
        .signature_def
        .get(name.unwrap_or_default())
}

/// Runs a predict request.
pub async fn predict(servable: &Servable, request: PredictRequest) -> Result<PredictResponse, Error> {
    servable.model.predict(request).await
}

/// The example feature that holds an image's encoded bytes (PNG, JPEG, …),
/// named as in TF's image datasets and object-detection examples.
pub const IMAGE_FEATURE: &str = "image/encoded";

/// The encoded image of example `i`: its own [`IMAGE_FEATURE`], else the
/// context's.
fn image_of<'a>(i: usize, example: &'a Example, context: Option<&'a Example>) -> Result<&'a [u8], Error> {
    let feature = example
        .features
        .get(IMAGE_FEATURE)
        .or_else(|| context.and_then(|c| c.features.get(IMAGE_FEATURE)))
        .ok_or_else(|| {
            Error::invalid_argument(format!(
                "examples[{i}] has no feature '{IMAGE_FEATURE}' (the encoded image as a string or {{\"b64\": …}})"
            ))
        })?;
    match feature {
        Feature::Bytes(values) => match values.as_slice() {
            [one] => Ok(one),
            _ => Err(Error::invalid_argument(format!(
                "Feature: {IMAGE_FEATURE} of examples[{i}] must hold one image, got {}",
                values.len()
            ))),
        },
        Feature::Float(_) | Feature::Int64(_) | Feature::Empty => Err(Error::invalid_argument(format!(
            "Feature: {IMAGE_FEATURE} of examples[{i}] must be bytes (a string or {{\"b64\": …}}), got {}",
            match feature {
                Feature::Float(_) => "float",
                Feature::Int64(_) => "int64",
                _ => "an empty list",
            }
        ))),
    }
}

/// The image classifier a classify request may run, checked before its
/// examples are read (as TF Serving checks the signature's method before
/// its input): a tensor model's signatures are all predict signatures, so
/// it gets TF Serving's wrong-method error.
pub fn classifier<'a>(servable: &'a Servable, signature_name: Option<&str>) -> Result<&'a Classifier, Error> {
    let signature = signature(servable, signature_name)?;
    match &servable.model {
        Model::Classifier(classifier) => Ok(classifier),
        Model::Tensors(_) => Err(Error::invalid_argument(format!(
            "Expected classification signature method_name to be tensorflow/serving/classify. Was: {}",
            signature.method_name
        ))),
    }
}

/// Classifies examples with an image classifier: each example's
/// [`IMAGE_FEATURE`] is decoded and preprocessed as the manifest says, and
/// its result lists every class as `(label, probability)`, highest first (a
/// TF classification signature also returns every class; sorting saves
/// clients the work).
pub async fn classify(servable: &Servable, request: &ExamplesRequest) -> Result<ClassifyResponse, Error> {
    let classifier = classifier(servable, request.signature_name.as_deref())?;
    let images = request
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| image_of(i, e, request.context.as_ref()).map(ImageInput::Encoded))
        .collect::<Result<Vec<_>, _>>()?;
    let results = classifier.classify_batch(&images, usize::MAX).await?;
    Ok(ClassifyResponse {
        results: results
            .into_iter()
            .map(|r| {
                r.classes
                    .into_iter()
                    .map(|c| Class {
                        label: c.label.unwrap_or_default(),
                        score: c.score,
                    })
                    .collect()
            })
            .collect(),
    })
}

/// Regresses: neither an image classifier nor a tensor model has a
/// regression signature, so this is TF Serving's answer for a signature of
/// another method, given before any example is read.
pub fn regress(servable: &Servable, signature_name: Option<&str>) -> Result<RegressResponse, Error> {
    let signature = signature(servable, signature_name)?;
    Err(Error::invalid_argument(format!(
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: {}",
        signature.method_name
    )))
}
