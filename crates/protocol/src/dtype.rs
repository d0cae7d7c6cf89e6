//! TensorFlow data types, as far as the serving APIs carry them.

use crate::Error;
use std::fmt;

/// A TensorFlow tensor element type.
///
/// These are the dtypes a serving request or response can hold. The REST JSON
/// codec reads and writes all of them but `Half`, `Bfloat16` and `Uint16`,
/// which (as in TF Serving) only travel in protobuf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    /// `DT_FLOAT`, 32-bit IEEE float.
    Float,
    /// `DT_DOUBLE`, 64-bit IEEE float.
    Double,
    /// `DT_INT8`.
    Int8,
    /// `DT_INT16`.
    Int16,
    /// `DT_INT32`.
    Int32,
    /// `DT_INT64`.
    Int64,
    /// `DT_UINT8`.
    Uint8,
    /// `DT_UINT16`.
    Uint16,
    /// `DT_UINT32`.
    Uint32,
    /// `DT_UINT64`.
    Uint64,
    /// `DT_BOOL`.
    Bool,
    /// `DT_STRING`: arbitrary bytes.
    String,
    /// `DT_HALF`, IEEE binary16.
    Half,
    /// `DT_BFLOAT16`.
    Bfloat16,
}

impl DataType {
    /// Every dtype, in protobuf enum order.
    pub const ALL: [DataType; 14] = [
        DataType::Float,
        DataType::Double,
        DataType::Int32,
        DataType::Uint8,
        DataType::Int16,
        DataType::Int8,
        DataType::String,
        DataType::Int64,
        DataType::Bool,
        DataType::Bfloat16,
        DataType::Uint16,
        DataType::Half,
        DataType::Uint32,
        DataType::Uint64,
    ];

    /// TensorFlow's short name (`DataTypeString`), as it appears in TF
    /// Serving's error messages: `float`, `int32`, `string`, `half`…
    pub fn name(self) -> &'static str {
        match self {
            DataType::Float => "float",
            DataType::Double => "double",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::Uint8 => "uint8",
            DataType::Uint16 => "uint16",
            DataType::Uint32 => "uint32",
            DataType::Uint64 => "uint64",
            DataType::Bool => "bool",
            DataType::String => "string",
            DataType::Half => "half",
            DataType::Bfloat16 => "bfloat16",
        }
    }

    /// The protobuf enum name, as model metadata prints it: `DT_FLOAT`…
    pub fn enum_name(self) -> &'static str {
        match self {
            DataType::Float => "DT_FLOAT",
            DataType::Double => "DT_DOUBLE",
            DataType::Int8 => "DT_INT8",
            DataType::Int16 => "DT_INT16",
            DataType::Int32 => "DT_INT32",
            DataType::Int64 => "DT_INT64",
            DataType::Uint8 => "DT_UINT8",
            DataType::Uint16 => "DT_UINT16",
            DataType::Uint32 => "DT_UINT32",
            DataType::Uint64 => "DT_UINT64",
            DataType::Bool => "DT_BOOL",
            DataType::String => "DT_STRING",
            DataType::Half => "DT_HALF",
            DataType::Bfloat16 => "DT_BFLOAT16",
        }
    }

    /// The dtype with this protobuf enum name.
    pub fn from_enum_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.enum_name() == name)
    }

    /// The protobuf enum value (`tensorflow.DataType`).
    pub fn to_proto(self) -> i32 {
        match self {
            DataType::Float => 1,
            DataType::Double => 2,
            DataType::Int32 => 3,
            DataType::Uint8 => 4,
            DataType::Int16 => 5,
            DataType::Int8 => 6,
            DataType::String => 7,
            DataType::Int64 => 9,
            DataType::Bool => 10,
            DataType::Bfloat16 => 14,
            DataType::Uint16 => 17,
            DataType::Half => 19,
            DataType::Uint32 => 22,
            DataType::Uint64 => 23,
        }
    }

    /// The dtype for a protobuf enum value, or an `UNIMPLEMENTED` error naming
    /// it for the dtypes serving cannot carry (complex, quantised, resource…).
    pub fn from_proto(value: i32) -> Result<DataType, Error> {
        DataType::ALL
            .into_iter()
            .find(|d| d.to_proto() == value)
            .ok_or_else(|| {
                let name = crate::pb::tensorflow::DataType::try_from(value)
                    .map(|d| d.as_str_name().to_owned())
                    .unwrap_or_else(|_| format!("enum value {value}"));
                Error::unimplemented(format!("Unsupported tensor dtype: {name}"))
            })
    }

    /// Size of one element in bytes in `tensor_content`; `None` for strings.
    pub fn byte_size(self) -> Option<usize> {
        match self {
            DataType::Int8 | DataType::Uint8 | DataType::Bool => Some(1),
            DataType::Int16 | DataType::Uint16 | DataType::Half | DataType::Bfloat16 => Some(2),
            DataType::Float | DataType::Int32 | DataType::Uint32 => Some(4),
            DataType::Double | DataType::Int64 | DataType::Uint64 => Some(8),
            DataType::String => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for DataType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.enum_name())
    }
}

impl<'de> serde::Deserialize<'de> for DataType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DataType::from_enum_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unsupported dtype {name:?}")))
    }
}
