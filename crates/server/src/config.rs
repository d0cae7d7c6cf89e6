//! Which models a server holds: one from `--model_name` and
//! `--model_base_path`, or many from `--model_config_file` in TF Serving's
//! protobuf text format (`ModelServerConfig { model_config_list { config
//! { … } } }`).
//!
//! The text format is read by a small parser of our own: the Rust crates that
//! read it either need a descriptor pool built from TF Serving's `.proto`
//! files (prost-reflect) or their own generated types (protobuf), both far
//! heavier than the handful of fields a model config has.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Which versions under a base path are served (`model_version_policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// The `num_versions` highest version numbers (TF Serving's default, 1).
    Latest {
        /// How many.
        num_versions: u32,
    },
    /// Every version found.
    All,
    /// These versions, when present.
    Specific(BTreeSet<i64>),
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy::Latest { num_versions: 1 }
    }
}

impl VersionPolicy {
    /// The versions to serve among those on disk.
    pub fn aspired(&self, on_disk: &BTreeSet<i64>) -> BTreeSet<i64> {
        match self {
            VersionPolicy::Latest { num_versions } => on_disk
                .iter()
                .rev()
                .take(*num_versions as usize)
                .copied()
                .collect(),
            VersionPolicy::All => on_disk.clone(),
            VersionPolicy::Specific(wanted) => on_disk.intersection(wanted).copied().collect(),
        }
    }
}

/// One model to serve (`ModelConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// The name in URLs.
    pub name: String,
    /// The directory holding the version directories.
    pub base_path: PathBuf,
    /// Which versions to serve.
    pub policy: VersionPolicy,
    /// `version_labels`: label → version.
    pub labels: BTreeMap<String, i64>,
    /// The preprocessing of a version directory that holds only
    /// `model.onnx` (its manifest is derived from the graph); edgeserve's
    /// addition, set by `edgeserve serve --preset`.
    pub preset: edgeserve::Preset,
}

impl ModelConfig {
    /// `--model_name` + `--model_base_path`: the latest version, no labels.
    pub fn single(name: impl Into<String>, base_path: impl Into<PathBuf>) -> ModelConfig {
        ModelConfig {
            name: name.into(),
            base_path: base_path.into(),
            policy: VersionPolicy::default(),
            labels: BTreeMap::new(),
            preset: edgeserve::Preset::default(),
        }
    }
}

/// A model config file that could not be read, with the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    Ident(String),
    Message(Vec<Field>),
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    value: Value,
    pos: Pos,
}

/// The deepest nesting accepted; a model config needs five levels.
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    pos: Pos,
}

type Parsed<T> = Result<T, (Pos, String)>;

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text: text.as_bytes(),
            at: 0,
            pos: Pos { line: 1, column: 1 },
        }
    }

    fn bump(&mut self) -> Option<u8> {
        let c = *self.text.get(self.at)?;
        self.at += 1;
        if c == b'\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else if c & 0xC0 != 0x80 {
            // Columns count characters, not UTF-8 continuation bytes.
            self.pos.column += 1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips blanks and `#` comments.
    fn skip(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'#' {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.bump();
                }
            } else if c.is_ascii_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            s.push(char::from(c));
            self.bump();
        }
        s
    }

    fn fields(&mut self, depth: usize, closing: Option<u8>) -> Parsed<Vec<Field>> {
        if depth > MAX_DEPTH {
            return Err((self.pos, format!("messages nested deeper than {MAX_DEPTH}")));
        }
        let mut out = Vec::new();
        loop {
            self.skip();
            let pos = self.pos;
            match (self.peek(), closing) {
                (None, None) => return Ok(out),
                (None, Some(c)) => return Err((pos, format!("expected '{}' before the end", char::from(c)))),
                (Some(c), Some(want)) if c == want => {
                    self.bump();
                    return Ok(out);
                }
                _ => {}
            }
            let name = self.ident();
            if name.is_empty() {
                let got = self.peek().map(char::from).unwrap_or(' ');
                return Err((pos, format!("expected a field name, got '{got}'")));
            }
            self.skip();
            let colon = self.peek() == Some(b':');
            if colon {
                self.bump();
                self.skip();
            }
            let value = match self.peek() {
                Some(open @ (b'{' | b'<')) => {
                    self.bump();
                    Value::Message(self.fields(depth + 1, Some(if open == b'{' { b'}' } else { b'>' }))?)
                }
                _ if !colon => return Err((self.pos, format!("expected ':' or '{{' after '{name}'"))),
                _ => self.scalar()?,
            };
            out.push(Field { name, value, pos });
            self.skip();
            if matches!(self.peek(), Some(b',' | b';')) {
                self.bump();
            }
        }
    }

    fn scalar(&mut self) -> Parsed<Value> {
        let pos = self.pos;
        match self.peek() {
            Some(b'"' | b'\'') => {
                // Adjacent string literals concatenate, as in C.
                let mut s = Vec::new();
                while let Some(q @ (b'"' | b'\'')) = self.peek() {
                    self.bump();
                    self.string_body(q, &mut s)?;
                    self.skip();
                }
                String::from_utf8(s)
                    .map(Value::Str)
                    .map_err(|_| (pos, "the string is not UTF-8".to_owned()))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let mut s = String::new();
                if c == b'-' {
                    s.push('-');
                    self.bump();
                }
                s.push_str(&self.ident());
                s.parse::<i64>()
                    .map(Value::Int)
                    .map_err(|_| (pos, format!("'{s}' is not an int64")))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => Ok(Value::Ident(self.ident())),
            Some(c) => Err((pos, format!("expected a value, got '{}'", char::from(c)))),
            None => Err((pos, "expected a value before the end".to_owned())),
        }
    }

    fn string_body(&mut self, quote: u8, out: &mut Vec<u8>) -> Parsed<()> {
        loop {
            let pos = self.pos;
            match self.bump() {
                None | Some(b'\n') => return Err((pos, "unterminated string".to_owned())),
                Some(c) if c == quote => return Ok(()),
                Some(b'\\') => {
                    let escaped = match self.bump() {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        Some(c @ (b'\\' | b'\'' | b'"')) => c,
                        other => {
                            let got = other.map(char::from).unwrap_or(' ');
                            return Err((pos, format!("unsupported escape '\\{got}'")));
                        }
                    };
                    out.push(escaped);
                }
                Some(c) => out.push(c),
            }
        }
    }
}

fn expect_str(field: &Field) -> Parsed<String> {
    match &field.value {
        Value::Str(s) => Ok(s.clone()),
        _ => Err((field.pos, format!("'{}' takes a string", field.name))),
    }
}

fn expect_int(field: &Field) -> Parsed<i64> {
    match &field.value {
        Value::Int(i) => Ok(*i),
        _ => Err((field.pos, format!("'{}' takes an integer", field.name))),
    }
}

fn expect_message(field: &Field) -> Parsed<&[Field]> {
    match &field.value {
        Value::Message(m) => Ok(m),
        _ => Err((field.pos, format!("'{}' takes a message {{ … }}", field.name))),
    }
}

fn unknown(field: &Field, message: &str) -> (Pos, String) {
    (field.pos, format!("unknown field '{}' in {message}", field.name))
}

fn policy(fields: &[Field], pos: Pos) -> Parsed<VersionPolicy> {
    let [field] = fields else {
        return Err((
            pos,
            "model_version_policy takes exactly one of latest, all, specific".into(),
        ));
    };
    let inner = expect_message(field)?;
    match field.name.as_str() {
        "latest" => {
            let mut num_versions = 1;
            for f in inner {
                match f.name.as_str() {
                    "num_versions" => {
                        num_versions = u32::try_from(expect_int(f)?)
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or((f.pos, "num_versions must be at least 1".to_owned()))?;
                    }
                    _ => return Err(unknown(f, "latest")),
                }
            }
            Ok(VersionPolicy::Latest { num_versions })
        }
        "all" => match inner.first() {
            Some(f) => Err(unknown(f, "all")),
            None => Ok(VersionPolicy::All),
        },
        "specific" => {
            let mut versions = BTreeSet::new();
            for f in inner {
                match f.name.as_str() {
                    "versions" => {
                        versions.insert(expect_int(f)?);
                    }
                    _ => return Err(unknown(f, "specific")),
                }
            }
            if versions.is_empty() {
                return Err((field.pos, "specific names no versions".into()));
            }
            Ok(VersionPolicy::Specific(versions))
        }
        _ => Err(unknown(field, "model_version_policy")),
    }
}

fn model_config(fields: &[Field], at: Pos, relative_to: &Path) -> Parsed<ModelConfig> {
    let (mut name, mut base_path, mut policy_found) = (None, None, None);
    let mut labels = BTreeMap::new();
    for f in fields {
        match f.name.as_str() {
            "name" => name = Some(expect_str(f)?),
            "base_path" => base_path = Some(expect_str(f)?),
            "model_platform" => {
                let platform = expect_str(f)?;
                // A config written for TF Serving says "tensorflow"; the
                // models in it are still what edgeserve loads (ONNX).
                if platform != "tensorflow" && platform != "onnx" {
                    return Err((
                        f.pos,
                        format!("model_platform '{platform}' is not served; use \"onnx\" or \"tensorflow\""),
                    ));
                }
            }
            "model_version_policy" => policy_found = Some(policy(expect_message(f)?, f.pos)?),
            "version_labels" => {
                let (mut key, mut value) = (None, None);
                for kv in expect_message(f)? {
                    match kv.name.as_str() {
                        "key" => key = Some(expect_str(kv)?),
                        "value" => value = Some(expect_int(kv)?),
                        _ => return Err(unknown(kv, "version_labels")),
                    }
                }
                let (Some(key), Some(value)) = (key, value) else {
                    return Err((f.pos, "version_labels needs a key and a value".into()));
                };
                labels.insert(key, value);
            }
            _ => return Err(unknown(f, "config")),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or((at, "config has no name".to_owned()))?;
    let base_path = base_path
        .filter(|p| !p.is_empty())
        .ok_or((at, format!("config '{name}' has no base_path")))?;
    Ok(ModelConfig {
        name,
        base_path: relative_to.join(base_path),
        policy: policy_found.unwrap_or_default(),
        labels,
        preset: edgeserve::Preset::default(),
    })
}

/// Reads a `ModelServerConfig` in text format. Relative base paths are taken
/// from `relative_to` (the config file's directory).
pub fn parse_model_config(
    text: &str,
    file: &str,
    relative_to: &Path,
) -> Result<Vec<ModelConfig>, ConfigError> {
    let fail = |(pos, message): (Pos, String)| ConfigError {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        message,
    };
    let top = Parser::new(text).fields(0, None).map_err(fail)?;
    let mut configs: Vec<ModelConfig> = Vec::new();
    for f in &top {
        if f.name != "model_config_list" {
            return Err(fail(unknown(
                f,
                "ModelServerConfig (only model_config_list is served)",
            )));
        }
        for c in expect_message(f).map_err(fail)? {
            if c.name != "config" {
                return Err(fail(unknown(c, "model_config_list")));
            }
            let config = model_config(expect_message(c).map_err(fail)?, c.pos, relative_to).map_err(fail)?;
            if configs.iter().any(|other| other.name == config.name) {
                return Err(fail((
                    c.pos,
                    format!("model '{}' is configured twice", config.name),
                )));
            }
            configs.push(config);
        }
    }
    if configs.is_empty() {
        return Err(fail((
            Pos { line: 1, column: 1 },
            "no model is configured".into(),
        )));
    }
    Ok(configs)
}

/// Reads TF Serving's `--batching_parameters_file` (`BatchingParameters` in
/// text format: `max_batch_size { value: 32 }`, `allowed_batch_sizes: 8`…);
/// what it leaves out keeps TF Serving's defaults.
pub fn parse_batching_parameters(
    text: &str,
    file: &str,
) -> Result<crate::batching::BatchingParameters, ConfigError> {
    let fail = |(pos, message): (Pos, String)| ConfigError {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        message,
    };
    let wrapped = |f: &Field| -> Parsed<i64> {
        let [inner] = expect_message(f)? else {
            return Err((f.pos, format!("'{}' takes {{ value: N }}", f.name)));
        };
        if inner.name != "value" {
            return Err(unknown(inner, &f.name));
        }
        let v = expect_int(inner)?;
        if v < 0 {
            return Err((inner.pos, format!("'{}' cannot be negative", f.name)));
        }
        Ok(v)
    };
    let size =
        |f: &Field, v: i64| usize::try_from(v).map_err(|_| (f.pos, format!("'{}' is too large", f.name)));
    let mut p = crate::batching::BatchingParameters::default();
    let top = Parser::new(text).fields(0, None).map_err(fail)?;
    for f in &top {
        match f.name.as_str() {
            "max_batch_size" => p.max_batch_size = size(f, wrapped(f).map_err(fail)?).map_err(fail)?,
            "batch_timeout_micros" => {
                p.batch_timeout = std::time::Duration::from_micros(wrapped(f).map_err(fail)?.unsigned_abs());
            }
            "max_enqueued_batches" => {
                p.max_enqueued_batches = size(f, wrapped(f).map_err(fail)?).map_err(fail)?
            }
            "num_batch_threads" => p.num_batch_threads = size(f, wrapped(f).map_err(fail)?).map_err(fail)?,
            // A name for TF Serving's shared thread pool; edgeserve has one.
            "thread_pool_name" => {}
            "allowed_batch_sizes" => {
                let v = expect_int(f).map_err(fail)?;
                let n = usize::try_from(v)
                    .map_err(|_| (f.pos, "allowed_batch_sizes entries must be positive".to_owned()))
                    .map_err(fail)?;
                p.allowed_batch_sizes.push(n);
            }
            "pad_variable_length_inputs" => match &f.value {
                Value::Ident(v) if v == "false" => {}
                Value::Ident(v) if v == "true" => {
                    return Err(fail((
                        f.pos,
                        "pad_variable_length_inputs: true is not supported: edgeserve merges only runs whose inputs have the same dimensions after the first".into(),
                    )));
                }
                _ => {
                    return Err(fail((
                        f.pos,
                        "'pad_variable_length_inputs' takes true or false".into(),
                    )));
                }
            },
            _ => return Err(fail(unknown(f, "BatchingParameters"))),
        }
    }
    p.validate().map_err(|m| fail((Pos { line: 1, column: 1 }, m)))?;
    Ok(p)
}

/// The models a gRPC `HandleReloadConfigRequest` asks for, checked as a
/// config file is (names unique and not empty, a base path each, a platform
/// edgeserve serves, a version policy that picks something). Relative base
/// paths are taken from the server's working directory, as TF Serving's.
pub fn from_proto(
    config: &edgeserve::protocol::pb::tensorflow::serving::ModelServerConfig,
) -> Result<Vec<ModelConfig>, String> {
    use edgeserve::protocol::pb::tensorflow::serving::{
        file_system_storage_path_source_config::servable_version_policy::PolicyChoice, model_server_config,
    };
    let list = match &config.config {
        Some(model_server_config::Config::ModelConfigList(list)) => list,
        Some(model_server_config::Config::CustomModelConfig(_)) => {
            return Err("a custom_model_config is not served; send a model_config_list".into());
        }
        None => return Err("the ModelServerConfig holds no model_config_list".into()),
    };
    let mut configs: Vec<ModelConfig> = Vec::new();
    for (i, c) in list.config.iter().enumerate() {
        let at = format!("model_config_list.config[{i}]");
        if c.name.is_empty() {
            return Err(format!("{at} has no name"));
        }
        if c.base_path.is_empty() {
            return Err(format!("{at} (model '{}') has no base_path", c.name));
        }
        if !["", "tensorflow", "onnx"].contains(&c.model_platform.as_str()) {
            return Err(format!(
                "{at}: model_platform '{}' is not served; use \"onnx\" or \"tensorflow\"",
                c.model_platform
            ));
        }
        let policy = match c
            .model_version_policy
            .as_ref()
            .and_then(|p| p.policy_choice.as_ref())
        {
            None => VersionPolicy::default(),
            Some(PolicyChoice::Latest(l)) if l.num_versions == 0 => VersionPolicy::default(),
            Some(PolicyChoice::Latest(l)) => VersionPolicy::Latest {
                num_versions: l.num_versions,
            },
            Some(PolicyChoice::All(_)) => VersionPolicy::All,
            Some(PolicyChoice::Specific(s)) if s.versions.is_empty() => {
                return Err(format!("{at}: specific names no versions"));
            }
            Some(PolicyChoice::Specific(s)) => VersionPolicy::Specific(s.versions.iter().copied().collect()),
        };
        if configs.iter().any(|other| other.name == c.name) {
            return Err(format!("model '{}' is configured twice", c.name));
        }
        configs.push(ModelConfig {
            name: c.name.clone(),
            base_path: PathBuf::from(&c.base_path),
            policy,
            labels: c.version_labels.clone().into_iter().collect(),
            preset: edgeserve::Preset::default(),
        });
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# Two models, as TF Serving's docs write them.
model_config_list {
  config {
    name: 'lite0'
    base_path: "/models/lite0"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config: {
    name: "lite" "2",
    base_path: 'rel/lite2';
    model_version_policy: { all {} }
  }
}
"#;

    #[test]
    fn reads_tf_serving_model_config() {
        let configs = parse_model_config(TEXT, "models.config", Path::new("/etc/es")).unwrap();
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[0].name, "lite0");
        assert_eq!(configs[0].base_path, PathBuf::from("/models/lite0"));
        assert_eq!(configs[0].policy, VersionPolicy::Specific(BTreeSet::from([1, 2])));
        assert_eq!(
            configs[0].labels,
            BTreeMap::from([("stable".to_owned(), 1), ("canary".to_owned(), 2)])
        );
        assert_eq!(configs[1].name, "lite2");
        assert_eq!(configs[1].base_path, PathBuf::from("/etc/es/rel/lite2"));
        assert_eq!(configs[1].policy, VersionPolicy::All);
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            (
                "model_config_list { config { name: 'a' base_path: '/x' bogus: 1 } }",
                1,
                56,
                "unknown field 'bogus' in config",
            ),
            (
                "model_config_list {\n config { name: 'a' }\n}",
                2,
                2,
                "config 'a' has no base_path",
            ),
            (
                "model_config_list { config { name: 'a\n' } }",
                1,
                38,
                "unterminated string",
            ),
            (
                "model_config_list { config { name: 'a' base_path: '/x' model_version_policy { latest { num_versions: 0 } } } }",
                1,
                88,
                "num_versions must be at least 1",
            ),
            (
                "model_config_list { config {",
                1,
                29,
                "expected '}' before the end",
            ),
            (
                "model_config_list { config { name 'a' } }",
                1,
                35,
                "expected ':' or '{' after 'name'",
            ),
            ("", 1, 1, "no model is configured"),
            (
                "model_config_list { config { name: 'a' base_path: '/x' model_platform: 'pytorch' } }",
                1,
                56,
                "model_platform 'pytorch' is not served",
            ),
            (
                "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }",
                1,
                58,
                "model 'a' is configured twice",
            ),
        ];
        for (text, line, column, message) in cases {
            let e = parse_model_config(text, "m.config", Path::new("/")).unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{text}: {e}");
            assert!(e.message.starts_with(message), "{text}: {e}");
            assert!(
                e.to_string().starts_with(&format!("m.config:{line}:{column}: ")),
                "{e}"
            );
        }
        let deep = format!("{}{}", "a {".repeat(40), "}".repeat(40));
        let e = parse_model_config(&deep, "m.config", Path::new("/")).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }

    #[test]
    fn policies_pick_versions() {
        let disk = BTreeSet::from([1, 2, 5, 9]);
        assert_eq!(VersionPolicy::default().aspired(&disk), BTreeSet::from([9]));
        assert_eq!(
            VersionPolicy::Latest { num_versions: 2 }.aspired(&disk),
            BTreeSet::from([5, 9])
        );
        assert_eq!(VersionPolicy::All.aspired(&disk), disk);
        assert_eq!(
            VersionPolicy::Specific(BTreeSet::from([2, 3])).aspired(&disk),
            BTreeSet::from([2])
        );
    }

    #[test]
    fn reads_tf_servings_batching_parameters() {
        let text = "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 5000 }\n\
                    max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 2 }\n\
                    allowed_batch_sizes: 8\nallowed_batch_sizes: 32\npad_variable_length_inputs: false\n";
        let p = parse_batching_parameters(text, "batching.config").unwrap();
        assert_eq!(p.max_batch_size, 32);
        assert_eq!(p.batch_timeout, std::time::Duration::from_micros(5000));
        assert_eq!(p.max_enqueued_batches, 100);
        assert_eq!(p.num_batch_threads, 2);
        assert_eq!(p.allowed_batch_sizes, [8, 32]);
        // What a file leaves out keeps TF Serving's defaults.
        let p = parse_batching_parameters("batch_timeout_micros { value: 0 }", "f").unwrap();
        assert_eq!(p.max_batch_size, 1000);
        assert_eq!(p.max_enqueued_batches, 10);
        for (text, wanted) in [
            ("max_batch_size: 32", "takes a message"),
            ("max_batch_size { size: 32 }", "unknown field 'size'"),
            (
                "batch_size { value: 32 }",
                "unknown field 'batch_size' in BatchingParameters",
            ),
            ("pad_variable_length_inputs: true", "not supported"),
            (
                "max_batch_size { value: 16 } allowed_batch_sizes: 8",
                "must match max_batch_size",
            ),
        ] {
            let e = parse_batching_parameters(text, "f").unwrap_err().to_string();
            assert!(e.contains(wanted), "{text}: {e}");
        }
    }
}
