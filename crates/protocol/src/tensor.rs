//! Dense tensors: a shape and a typed, row-major element buffer.

use crate::{DataType, Error};
use half::{bf16, f16};

/// The elements of a tensor, one variant per [`DataType`].
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each variant is the dtype of the same name
pub enum TensorData {
    Float(Vec<f32>),
    Double(Vec<f64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Bool(Vec<bool>),
    /// `DT_STRING`: each element is an arbitrary byte string.
    String(Vec<Vec<u8>>),
    Half(Vec<f16>),
    Bfloat16(Vec<bf16>),
}

macro_rules! for_each_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Float($v) => $body,
            TensorData::Double($v) => $body,
            TensorData::Int8($v) => $body,
            TensorData::Int16($v) => $body,
            TensorData::Int32($v) => $body,
            TensorData::Int64($v) => $body,
            TensorData::Uint8($v) => $body,
            TensorData::Uint16($v) => $body,
            TensorData::Uint32($v) => $body,
            TensorData::Uint64($v) => $body,
            TensorData::Bool($v) => $body,
            TensorData::String($v) => $body,
            TensorData::Half($v) => $body,
            TensorData::Bfloat16($v) => $body,
        }
    };
}

impl TensorData {
    /// The dtype of these elements.
    pub fn dtype(&self) -> DataType {
        match self {
            TensorData::Float(_) => DataType::Float,
            TensorData::Double(_) => DataType::Double,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Bool(_) => DataType::Bool,
            TensorData::String(_) => DataType::String,
            TensorData::Half(_) => DataType::Half,
            TensorData::Bfloat16(_) => DataType::Bfloat16,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        for_each_variant!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty buffer of the given dtype with room for `capacity` elements.
    pub fn with_capacity(dtype: DataType, capacity: usize) -> TensorData {
        match dtype {
            DataType::Float => TensorData::Float(Vec::with_capacity(capacity)),
            DataType::Double => TensorData::Double(Vec::with_capacity(capacity)),
            DataType::Int8 => TensorData::Int8(Vec::with_capacity(capacity)),
            DataType::Int16 => TensorData::Int16(Vec::with_capacity(capacity)),
            DataType::Int32 => TensorData::Int32(Vec::with_capacity(capacity)),
            DataType::Int64 => TensorData::Int64(Vec::with_capacity(capacity)),
            DataType::Uint8 => TensorData::Uint8(Vec::with_capacity(capacity)),
            DataType::Uint16 => TensorData::Uint16(Vec::with_capacity(capacity)),
            DataType::Uint32 => TensorData::Uint32(Vec::with_capacity(capacity)),
            DataType::Uint64 => TensorData::Uint64(Vec::with_capacity(capacity)),
            DataType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DataType::String => TensorData::String(Vec::with_capacity(capacity)),
            DataType::Half => TensorData::Half(Vec::with_capacity(capacity)),
            DataType::Bfloat16 => TensorData::Bfloat16(Vec::with_capacity(capacity)),
        }
    }

    /// Appends `other`'s elements; both must have the same dtype.
    pub(crate) fn append(&mut self, other: TensorData) -> Result<(), Error> {
        macro_rules! arms {
            ($($v:ident),*) => {
                match (self, other) {
                    $((TensorData::$v(a), TensorData::$v(b)) => { a.extend(b); Ok(()) })*
                    (a, b) => Err(Error::invalid_argument(format!(
                        "Expecting dtype: {} but got: {}", a.dtype(), b.dtype()
                    ))),
                }
            };
        }
        arms!(
            Float, Double, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool, String, Half,
            Bfloat16
        )
    }

    /// Elements `range` as a new buffer.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> TensorData {
        macro_rules! arms {
            ($($v:ident),*) => {
                match self { $(TensorData::$v(a) => TensorData::$v(a[range].to_vec()),)* }
            };
        }
        arms!(
            Float, Double, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool, String, Half,
            Bfloat16
        )
    }
}

/// Most dimensions a tensor may have (TensorFlow's `TensorShape::MaxDimensions`).
pub const MAX_RANK: usize = 254;

/// A dense tensor: shape plus row-major elements whose count matches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// Number of elements of a shape, or `None` if it overflows `usize`.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

pub(crate) fn shape_string(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

impl Tensor {
    /// A tensor of the given shape; the element count must match it and the
    /// rank may not exceed [`MAX_RANK`].
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, Error> {
        if shape.len() > MAX_RANK {
            return Err(Error::invalid_argument(format!(
                "Tensor rank {} exceeds the maximum of {MAX_RANK} dimensions",
                shape.len()
            )));
        }
        match element_count(&shape) {
            Some(n) if n == data.len() => Ok(Tensor { shape, data }),
            Some(n) => Err(Error::invalid_argument(format!(
                "Shape {} needs {n} elements but got: {}",
                shape_string(&shape),
                data.len()
            ))),
            None => Err(Error::invalid_argument(format!(
                "Shape {} has too many elements",
                shape_string(&shape)
            ))),
        }
    }

    /// A tensor from a shape and a `Vec` of elements, e.g.
    /// `Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])`.
    pub fn from_vec<T: Element>(shape: Vec<usize>, values: Vec<T>) -> Result<Tensor, Error> {
        Tensor::new(shape, T::wrap(values))
    }

    /// A tensor copied from a slice.
    pub fn from_slice<T: Element>(shape: &[usize], values: &[T]) -> Result<Tensor, Error> {
        Tensor::new(shape.to_vec(), T::wrap(values.to_vec()))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor {
            shape: Vec::new(),
            data: T::wrap(vec![value]),
        }
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The dtype.
    pub fn dtype(&self) -> DataType {
        self.data.dtype()
    }

    /// The elements, row-major.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as a slice of `T`, or `None` if the dtype is not `T`'s.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::as_slice(&self.data)
    }

    /// The elements as a `Vec<T>`, or the tensor back if the dtype differs.
    pub fn into_vec<T: Element>(self) -> Result<Vec<T>, Tensor> {
        let shape = self.shape;
        T::unwrap(self.data).map_err(|data| Tensor { shape, data })
    }

    /// Shape and elements.
    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    /// Stacks tensors of equal shape and dtype along a new first dimension.
    pub fn stack(items: Vec<Tensor>) -> Result<Tensor, Error> {
        let mut iter = items.into_iter();
        let first = iter
            .next()
            .ok_or_else(|| Error::invalid_argument("Cannot stack an empty list of tensors"))?;
        let inner = first.shape.clone();
        let mut count = 1usize;
        let mut data = first.data;
        for item in iter {
            if item.shape != inner {
                return Err(Error::invalid_argument(format!(
                    "Expecting shape {} but got: {}",
                    shape_string(&inner),
                    shape_string(&item.shape)
                )));
            }
            data.append(item.data)?;
            count += 1;
        }
        let mut shape = Vec::with_capacity(inner.len() + 1);
        shape.push(count);
        shape.extend(inner);
        Tensor::new(shape, data)
    }

    /// Joins tensors along dimension 0: each must have rank 1 or more, and
    /// the same dtype and the same other dimensions as the first.
    pub fn concat(items: Vec<Tensor>) -> Result<Tensor, Error> {
        let mut iter = items.into_iter();
        let first = iter
            .next()
            .ok_or_else(|| Error::invalid_argument("Cannot concatenate an empty list of tensors"))?;
        let Some((&rows, inner)) = first.shape.split_first() else {
            return Err(Error::invalid_argument(
                "Cannot concatenate scalars along dimension 0",
            ));
        };
        let inner = inner.to_vec();
        let mut rows = rows;
        let mut data = first.data;
        for item in iter {
            match item.shape.split_first() {
                Some((&n, rest)) if rest == inner.as_slice() => {
                    rows += n;
                    data.append(item.data)?;
                }
                _ => {
                    return Err(Error::invalid_argument(format!(
                        "Cannot concatenate a tensor of shape {} to rows of shape {}",
                        shape_string(&item.shape),
                        shape_string(&inner)
                    )));
                }
            }
        }
        let mut shape = Vec::with_capacity(inner.len() + 1);
        shape.push(rows);
        shape.extend(inner);
        Tensor::new(shape, data)
    }

    /// Splits along dimension 0 into consecutive parts of `rows[i]` rows;
    /// the parts must cover it exactly.
    pub fn split_rows(&self, rows: &[usize]) -> Result<Vec<Tensor>, Error> {
        let Some((&total, inner)) = self.shape.split_first() else {
            return Err(Error::invalid_argument("A scalar tensor has no rows to split"));
        };
        if rows.iter().sum::<usize>() != total {
            return Err(Error::invalid_argument(format!(
                "Cannot split {total} rows into parts of {rows:?}"
            )));
        }
        let stride = element_count(inner).unwrap_or(0);
        let mut start = 0;
        rows.iter()
            .map(|&n| {
                let mut shape = Vec::with_capacity(self.shape.len());
                shape.push(n);
                shape.extend_from_slice(inner);
                let part = Tensor {
                    data: self.data.slice(start * stride..(start + n) * stride),
                    shape,
                };
                start += n;
                Ok(part)
            })
            .collect()
    }

    /// Size of dimension 0, or `None` for a scalar.
    pub fn batch_size(&self) -> Option<usize> {
        self.shape.first().copied()
    }

    /// The `index`-th sub-tensor along dimension 0 (row `index` of a batch).
    pub fn row(&self, index: usize) -> Result<Tensor, Error> {
        let batch = self
            .batch_size()
            .ok_or_else(|| Error::invalid_argument("A scalar tensor has no rows"))?;
        if index >= batch {
            return Err(Error::invalid_argument(format!(
                "Row {index} is out of range for a batch of {batch}"
            )));
        }
        let inner = self.shape[1..].to_vec();
        let stride = element_count(&inner).unwrap_or(0);
        Ok(Tensor {
            data: self.data.slice(index * stride..(index + 1) * stride),
            shape: inner,
        })
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust element type that a [`Tensor`] can hold: `f32`, `f64`, `i8`, `i16`,
/// `i32`, `i64`, `u8`, `u16`, `u32`, `u64`, `bool`, `Vec<u8>` (strings),
/// `half::f16` and `half::bf16`.
pub trait Element: sealed::Sealed + Clone + Sized {
    /// The dtype of tensors of this element.
    const DTYPE: DataType;
    /// Wraps values as tensor data.
    fn wrap(values: Vec<Self>) -> TensorData;
    /// The values, if `data` holds this type.
    fn as_slice(data: &TensorData) -> Option<&[Self]>;
    /// The values, or `data` back if it holds another type.
    fn unwrap(data: TensorData) -> Result<Vec<Self>, TensorData>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DataType = DataType::$variant;
            fn wrap(values: Vec<Self>) -> TensorData {
                TensorData::$variant(values)
            }
            fn as_slice(data: &TensorData) -> Option<&[Self]> {
                match data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn unwrap(data: TensorData) -> Result<Vec<Self>, TensorData> {
                match data {
                    TensorData::$variant(v) => Ok(v),
                    other => Err(other),
                }
            }
        }
    };
}

element!(f32, Float);
element!(f64, Double);
element!(i8, Int8);
element!(i16, Int16);
element!(i32, Int32);
element!(i64, Int64);
element!(u8, Uint8);
element!(u16, Uint16);
element!(u32, Uint32);
element!(u64, Uint64);
element!(bool, Bool);
element!(Vec<u8>, String);
element!(f16, Half);
element!(bf16, Bfloat16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_and_split_rows_are_inverse() {
        let a = Tensor::from_vec(vec![1, 2], vec![1f32, 2.0]).unwrap();
        let b = Tensor::from_vec(vec![2, 2], vec![3f32, 4.0, 5.0, 6.0]).unwrap();
        let joined = Tensor::concat(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(joined.shape(), &[3, 2]);
        assert_eq!(joined.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(joined.split_rows(&[1, 2]).unwrap(), vec![a.clone(), b]);
        assert!(joined.split_rows(&[1, 1]).is_err(), "parts must cover the rows");
        let wrong = Tensor::from_vec(vec![1, 3], vec![0f32; 3]).unwrap();
        assert!(Tensor::concat(vec![a.clone(), wrong]).is_err());
        let ints = Tensor::from_vec(vec![1, 2], vec![1i32, 2]).unwrap();
        assert!(Tensor::concat(vec![a, ints]).is_err(), "dtypes must match");
        assert!(Tensor::concat(vec![Tensor::scalar(1f32)]).is_err());
    }

    #[test]
    fn from_vec_checks_element_count() {
        assert!(Tensor::from_vec(vec![2, 3], vec![0f32; 6]).is_ok());
        let err = Tensor::from_vec(vec![2, 3], vec![0f32; 5]).unwrap_err();
        assert_eq!(err.message(), "Shape [2,3] needs 6 elements but got: 5");
        let err = Tensor::from_vec(vec![usize::MAX, 3], vec![0f32; 5]).unwrap_err();
        assert!(err.message().contains("too many elements"), "{err}");
    }

    #[test]
    fn slices_round_trip_every_element_type() {
        fn check<T: Element + PartialEq + std::fmt::Debug>(values: Vec<T>) {
            let t = Tensor::from_slice(&[values.len()], &values).unwrap();
            assert_eq!(t.dtype(), T::DTYPE);
            assert_eq!(t.as_slice::<T>().unwrap(), &values[..]);
            assert_eq!(t.into_vec::<T>().unwrap(), values);
        }
        check(vec![1.5f32, -0.0, f32::MAX]);
        check(vec![1.5f64, f64::MIN_POSITIVE]);
        check(vec![i8::MIN, i8::MAX]);
        check(vec![i16::MIN, i16::MAX]);
        check(vec![i32::MIN, i32::MAX]);
        check(vec![i64::MIN, i64::MAX]);
        check(vec![u8::MAX]);
        check(vec![u16::MAX]);
        check(vec![u32::MAX]);
        check(vec![u64::MAX]);
        check(vec![true, false]);
        check(vec![b"a".to_vec(), vec![0xff, 0]]);
        check(vec![f16::from_f32(0.5), f16::INFINITY]);
        check(vec![bf16::from_f32(-2.0)]);
    }

    #[test]
    fn wrong_type_gives_the_tensor_back() {
        let t = Tensor::from_vec(vec![1], vec![1i32]).unwrap();
        assert!(t.as_slice::<f32>().is_none());
        let back = t.clone().into_vec::<f32>().unwrap_err();
        assert_eq!(back, t);
    }

    #[test]
    fn stack_and_row_are_inverse() {
        let a = Tensor::from_vec(vec![2], vec![1i64, 2]).unwrap();
        let b = Tensor::from_vec(vec![2], vec![3i64, 4]).unwrap();
        let s = Tensor::stack(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(s.row(0).unwrap(), a);
        assert_eq!(s.row(1).unwrap(), b);
        assert!(s.row(2).is_err());
        let c = Tensor::from_vec(vec![1, 2], vec![3i64, 4]).unwrap();
        let err = Tensor::stack(vec![a.clone(), c]).unwrap_err();
        assert_eq!(err.message(), "Expecting shape [2] but got: [1,2]");
        let d = Tensor::from_vec(vec![2], vec![3i32, 4]).unwrap();
        assert!(Tensor::stack(vec![a, d]).is_err());
    }
}
