//! TF Serving's gRPC API (`tensorflow.serving.PredictionService` and
//! `tensorflow.serving.ModelService`) on the same models, limits and worker
//! pool as the REST API: each call is converted to the REST types and
//! answered by `edgeserve_endpoint::service`, the functions the REST
//! handler calls, so the two transports answer alike by construction.

use crate::Shared;
use edgeserve::protocol::pb::tensorflow::serving as tfs;
use edgeserve::protocol::{
    Code, DEFAULT_SIGNATURE, Error, ExamplesRequest, ModelSpec, PredictRequest, SignatureDef, VersionSelector,
};
use edgeserve_endpoint::service;
use edgeserve_grpc::{ModelService, PredictionService};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// Both services over one server's state.
pub(crate) struct Services {
    pub(crate) shared: Arc<Shared>,
}

/// An error as a gRPC status: TF Serving's codes are gRPC's.
fn status_of(e: &Error) -> Status {
    Status::new(tonic::Code::from_i32(e.code().to_proto()), e.message())
}

fn missing_spec() -> Error {
    Error::invalid_argument("Missing ModelSpec")
}

/// When a call reached the services, stamped by [`stamp_arrival`] before
/// tonic starts its own timer for the client's deadline.
#[derive(Clone, Copy)]
pub(crate) struct Arrival(tokio::time::Instant);

/// Stamps a call's [`Arrival`]: a layer inside tonic's deadline layer,
/// called synchronously just before that layer starts its timer.
pub(crate) fn stamp_arrival<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    request
        .extensions_mut()
        .insert(Arrival(tokio::time::Instant::now()));
    request
}

/// The deadline a client sent (`grpc-timeout`: up to 8 digits and a unit),
/// or `None` when it sent none or one that does not parse.
fn client_timeout(meta: &MetadataMap) -> Option<Duration> {
    let value = meta.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The outputs an `output_filter` keeps (`None`: all), checked against the
/// signature as TF Serving checks it.
fn output_filter(filter: &[String], signature: &SignatureDef) -> Result<Option<BTreeSet<String>>, Error> {
    if filter.is_empty() {
        return Ok(None);
    }
    let mut seen = BTreeSet::new();
    for alias in filter {
        if !signature.outputs.contains_key(alias) {
            let names: Vec<&str> = signature.outputs.keys().map(String::as_str).collect();
            return Err(Error::invalid_argument(format!(
                "output tensor alias not found in signature: {alias} Outputs expected to be in the set {{{}}}.",
                names.join(",")
            )));
        }
        if !seen.insert(alias.clone()) {
            return Err(Error::invalid_argument(format!(
                "duplicate output tensor alias: {alias}"
            )));
        }
    }
    Ok(Some(seen))
}

/// The model spec a response carries: the name asked for, the version that
/// answered and the signature that ran.
fn answered(name: String, version: i64, signature: &str) -> ModelSpec {
    ModelSpec {
        name,
        version: Some(VersionSelector::Number(version)),
        signature_name: if signature.is_empty() {
            DEFAULT_SIGNATURE.to_owned()
        } else {
            signature.to_owned()
        },
    }
}

impl Services {
    /// Runs `job` as an admitted request, as a REST request runs: refused
    /// with UNAVAILABLE when the server is full, queued for a worker, and
    /// cancelled at the server's timeout or the client's deadline,
    /// whichever comes first.
    async fn run<T: Send + 'static>(
        &self,
        meta: &MetadataMap,
        extensions: &tonic::Extensions,
        job: impl FnOnce(&Shared) -> Result<T, Error> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let admitted = self.shared.admit().map_err(|e| status_of(&e))?;
        let server = self.shared.options.timeout;
        let (timeout, timed_out) = match client_timeout(meta) {
            Some(client) if client < server => {
                (client, Error::new(Code::DeadlineExceeded, "Deadline Exceeded"))
            }
            _ => (
                server,
                Error::new(
                    Code::DeadlineExceeded,
                    format!("Request timed out after {} ms", server.as_millis()),
                ),
            ),
        };
        // From the call's arrival, not from here (after its message was
        // read): tonic times the client's deadline from there too, and
        // answers CANCELLED when its timer wins; on a deadline ours is due
        // first, so the client gets TF Serving's DEADLINE_EXCEEDED.
        let arrived = extensions
            .get::<Arrival>()
            .map_or_else(tokio::time::Instant::now, |a| a.0);
        let deadline = arrived + timeout;
        Arc::clone(&self.shared)
            .execute(admitted, deadline, timed_out, job)
            .await
            .and_then(|r| r)
            .map(Response::new)
            .map_err(|e| status_of(&e))
    }
}

/// The servable a request's model spec names.
fn servable_for(
    shared: &Shared,
    spec: Option<&tfs::ModelSpec>,
) -> Result<(ModelSpec, Arc<edgeserve_endpoint::Servable>), Error> {
    let spec = ModelSpec::from(spec.ok_or_else(missing_spec)?);
    let servable = service::servable(&shared.models.snapshot(), &spec.name, spec.version.as_ref())?;
    Ok((spec, servable))
}

#[tonic::async_trait]
impl PredictionService for Services {
    async fn predict(
        &self,
        request: Request<tfs::PredictRequest>,
    ) -> Result<Response<tfs::PredictResponse>, Status> {
        let (meta, extensions, message) = request.into_parts();
        let max_values = self.shared.options.grpc_max_values;
        self.run(&meta, &extensions, move |shared| {
            let (spec, servable) = servable_for(shared, message.model_spec.as_ref())?;
            let (_, request) = PredictRequest::from_proto_limited(&message, max_values)?;
            let signature_name = request.signature().to_owned();
            let wanted = output_filter(
                &message.output_filter,
                service::signature(&servable, Some(&signature_name))?,
            )?;
            let mut response = pollster::block_on(service::predict(&servable, request))?;
            if let Some(wanted) = wanted {
                response.outputs.retain(|name, _| wanted.contains(name));
            }
            Ok(response.to_proto(Some(&answered(spec.name, servable.version, &signature_name))))
        })
        .await
    }

    async fn classify(
        &self,
        request: Request<tfs::ClassificationRequest>,
    ) -> Result<Response<tfs::ClassificationResponse>, Status> {
        let (meta, extensions, message) = request.into_parts();
        let max_values = self.shared.options.grpc_max_values;
        self.run(&meta, &extensions, move |shared| {
            let (spec, servable) = servable_for(shared, message.model_spec.as_ref())?;
            // The signature's method first, then the input, as TF Serving.
            service::classifier(&servable, Some(&spec.signature_name))?;
            let (_, request) =
                ExamplesRequest::from_proto(message.model_spec.as_ref(), message.input.as_ref(), max_values)?;
            let response = pollster::block_on(service::classify(&servable, &request))?;
            Ok(response.to_proto(Some(&answered(spec.name, servable.version, &spec.signature_name))))
        })
        .await
    }

    async fn regress(
        &self,
        request: Request<tfs::RegressionRequest>,
    ) -> Result<Response<tfs::RegressionResponse>, Status> {
        let (meta, extensions, message) = request.into_parts();
        self.run(&meta, &extensions, move |shared| {
            let (spec, servable) = servable_for(shared, message.model_spec.as_ref())?;
            // No model of edgeserve's has a regression signature: refused
            // on the signature, before the input is read, as TF Serving.
            let response = service::regress(&servable, Some(&spec.signature_name))?;
            Ok(response.to_proto(Some(&answered(spec.name, servable.version, &spec.signature_name))))
        })
        .await
    }

    async fn multi_inference(
        &self,
        _request: Request<tfs::MultiInferenceRequest>,
    ) -> Result<Response<tfs::MultiInferenceResponse>, Status> {
        // Its tasks are classify and regress signatures; edgeserve's models
        // have neither kind over tf.Examples of arbitrary features.
        Err(Status::unimplemented(
            "MultiInference is not supported by edgeserve: send a Classify or Predict request per task",
        ))
    }

    async fn get_model_metadata(
        &self,
        request: Request<tfs::GetModelMetadataRequest>,
    ) -> Result<Response<tfs::GetModelMetadataResponse>, Status> {
        let (meta, extensions, message) = request.into_parts();
        self.run(&meta, &extensions, move |shared| {
            if message.model_spec.is_none() {
                return Err(missing_spec());
            }
            if message.metadata_field.is_empty() {
                return Err(Error::invalid_argument(
                    "GetModelMetadataRequest must specify at least one metadata_field",
                ));
            }
            if let Some(field) = message.metadata_field.iter().find(|f| *f != "signature_def") {
                return Err(Error::invalid_argument(format!(
                    "Metadata field {field} is not supported"
                )));
            }
            let (_, servable) = servable_for(shared, message.model_spec.as_ref())?;
            Ok(tfs::GetModelMetadataResponse::from(service::metadata(&servable)))
        })
        .await
    }
}

#[tonic::async_trait]
impl ModelService for Services {
    async fn get_model_status(
        &self,
        request: Request<tfs::GetModelStatusRequest>,
    ) -> Result<Response<tfs::GetModelStatusResponse>, Status> {
        let (meta, extensions, message) = request.into_parts();
        self.run(&meta, &extensions, move |shared| {
            let spec = ModelSpec::from(message.model_spec.as_ref().ok_or_else(missing_spec)?);
            let status = service::status(&shared.models.snapshot(), &spec.name, spec.version.as_ref())?;
            Ok(tfs::GetModelStatusResponse::from(&status))
        })
        .await
    }

    /// Loads and unloads what the new config asks for before answering,
    /// as TF Serving does. Not a request of the worker pool: loading a model
    /// takes longer than a request may, and polls are serialised anyway.
    async fn handle_reload_config_request(
        &self,
        request: Request<tfs::ReloadConfigRequest>,
    ) -> Result<Response<tfs::ReloadConfigResponse>, Status> {
        let message = request.into_inner();
        let config = message
            .config
            .ok_or_else(|| Status::invalid_argument("ReloadConfigRequest has no config"))?;
        let configs = crate::config::from_proto(&config).map_err(Status::invalid_argument)?;
        let models = Arc::clone(&self.shared.models);
        let reloaded = tokio::task::spawn_blocking(move || models.reload(configs))
            .await
            .map_err(|e| Status::internal(format!("the reload's worker stopped: {e}")))?;
        match reloaded {
            Ok(_) => Ok(Response::new(tfs::ReloadConfigResponse {
                status: Some(tfs::StatusProto::default()),
            })),
            Err(e) => Err(Status::new(
                tonic::Code::from_i32(e.status_code().to_proto()),
                e.to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_deadlines_parse_as_grpc_writes_them() {
        let with = |v: &str| {
            let mut m = MetadataMap::new();
            m.insert("grpc-timeout", v.parse().unwrap());
            client_timeout(&m)
        };
        assert_eq!(with("250m"), Some(Duration::from_millis(250)));
        assert_eq!(with("3S"), Some(Duration::from_secs(3)));
        assert_eq!(with("2M"), Some(Duration::from_secs(120)));
        assert_eq!(with("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(with("123456789m"), None, "more than 8 digits");
        assert_eq!(with("5x"), None);
        assert_eq!(with("m"), None);
        assert_eq!(client_timeout(&MetadataMap::new()), None);
    }

    #[test]
    fn output_filters_are_checked_as_tf_serving_checks_them() {
        let info = edgeserve::protocol::TensorInfo {
            dtype: edgeserve::protocol::DataType::Float,
            tensor_shape: Default::default(),
            name: "y".into(),
        };
        let signature = SignatureDef {
            inputs: Default::default(),
            outputs: [("y".to_owned(), info.clone()), ("z".to_owned(), info)].into(),
            method_name: edgeserve::protocol::PREDICT_METHOD.into(),
            defaults: Default::default(),
        };
        assert_eq!(output_filter(&[], &signature).unwrap(), None);
        assert_eq!(
            output_filter(&["z".into()], &signature).unwrap(),
            Some(BTreeSet::from(["z".to_owned()]))
        );
        let e = output_filter(&["w".into()], &signature).unwrap_err();
        assert_eq!(
            e.message(),
            "output tensor alias not found in signature: w Outputs expected to be in the set {y,z}."
        );
        let e = output_filter(&["y".into(), "y".into()], &signature).unwrap_err();
        assert_eq!(e.message(), "duplicate output tensor alias: y");
    }
}
