//! numpy arrays in and out: every argument is checked here, so the kernels
//! only ever see what their contract allows, and a wrong dtype, shape or range
//! is a `ValueError` naming the argument.

use numpy::{
    dtype, Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use edgedecoding_kernels::KernelError;

/// A checked, contiguous copy of an array argument.
pub struct Arr<T> {
    /// Elements in row-major order.
    pub data: Vec<T>,
    /// numpy shape.
    pub shape: Vec<usize>,
}

impl<T> Arr<T> {
    /// Length of the last dimension (1 for a 0-d array).
    pub fn last(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
    /// The shape without its last dimension.
    pub fn lead(&self) -> &[usize] {
        &self.shape[..self.shape.len().saturating_sub(1)]
    }
}

/// Integer element types with their range (for the value check of a cast).
pub trait Int: Element + Copy {
    /// numpy name.
    const NAME: &'static str;
    /// Smallest value.
    const MIN: i128;
    /// Largest value.
    const MAX: i128;
    /// `v` (in range) as `Self`.
    fn from_i128(v: i128) -> Self;
}

macro_rules! int {
    ($($t:ty => $n:literal),*) => {$(
        impl Int for $t {
            const NAME: &'static str = $n;
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
            fn from_i128(v: i128) -> Self {
                v as $t
            }
        }
    )*};
}
int!(i8 => "int8", u8 => "uint8", i16 => "int16", u16 => "uint16", i32 => "int32", u32 => "uint32", i64 => "int64", u64 => "uint64");

/// `ValueError(msg)`.
pub fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A kernel's refusal as a `ValueError`.
pub fn kernel_error(e: KernelError) -> PyErr {
    value_error(e.to_string())
}

/// `lo <= v <= hi`, else `ValueError("name = v is outside [lo, hi]")` (the
/// kernels' wording).
pub fn check_range(name: &str, v: i128, lo: i128, hi: i128) -> PyResult<()> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(value_error(format!("{name} = {v} is outside [{lo}, {hi}]")))
    }
}

/// A count or index argument (`usize`): negative values are a `ValueError`.
pub fn count(name: &str, v: i64) -> PyResult<usize> {
    check_range(name, v as i128, 0, i64::MAX as i128)?;
    Ok(v as usize)
}

/// A `u32` argument (fractions, token ids): out of range is a `ValueError`.
pub fn small(name: &str, v: i64) -> PyResult<u32> {
    check_range(name, v as i128, 0, u32::MAX as i128)?;
    Ok(v as u32)
}

fn as_ndarray<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = obj.downcast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let np = obj.py().import("numpy")?;
    let a = np.call_method1("asarray", (obj,))?;
    Ok(a.downcast_into::<PyUntypedArray>()?)
}

/// An integer array argument as `T`: any integer dtype whose values all fit
/// `T` (the cast is exact); anything else — floats, booleans, values out of
/// range — is a `ValueError`. Lists are taken through `numpy.asarray`.
pub fn ints<T: Int>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Arr<T>> {
    let py = obj.py();
    let a = as_ndarray(obj)?;
    let dt = a.dtype();
    let kind = dt.kind();
    if kind != b'i' && kind != b'u' {
        return Err(value_error(format!(
            "{name}: expected an integer array ({}), got dtype {}",
            T::NAME,
            dt.str()?
        )));
    }
    let target = dtype::<T>(py);
    let a: Bound<'_, PyAny> = if dt.is_equiv_to(&target) {
        a.into_any()
    } else {
        if a.len() > 0 {
            let lo: i128 = a.call_method0("min")?.extract()?;
            let hi: i128 = a.call_method0("max")?.extract()?;
            if lo < T::MIN || hi > T::MAX {
                let bad = if lo < T::MIN { lo } else { hi };
                return Err(value_error(format!(
                    "{name}: value {bad} does not fit {} [{}, {}]",
                    T::NAME,
                    T::MIN,
                    T::MAX
                )));
            }
        }
        a.call_method1("astype", (target,))?
    };
    let arr = a.downcast::<PyArrayDyn<T>>()?.readonly();
    let shape = arr.shape().to_vec();
    let data = match arr.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => arr.as_array().iter().copied().collect(),
    };
    Ok(Arr { data, shape })
}

/// A float array argument as `f32`: float16 or float32 (exact); other dtypes
/// are a `ValueError` (a float64 array must be cast explicitly: the quantizer
/// is defined on f32 weights).
pub fn f32s(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Arr<f32>> {
    let py = obj.py();
    let a = as_ndarray(obj)?;
    let dt = a.dtype();
    let target = dtype::<f32>(py);
    let a: Bound<'_, PyAny> = if dt.is_equiv_to(&target) {
        a.into_any()
    } else if dt.kind() == b'f' && dt.itemsize() < 4 {
        a.call_method1("astype", (target,))?
    } else {
        return Err(value_error(format!(
            "{name}: expected a float32 array, got dtype {} (cast it with numpy.float32(...))",
            dt.str()?
        )));
    };
    let arr = a.downcast::<PyArrayDyn<f32>>()?.readonly();
    let shape = arr.shape().to_vec();
    let data = match arr.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => arr.as_array().iter().copied().collect(),
    };
    Ok(Arr { data, shape })
}

/// An integer argument that is either one Python integer (used for every
/// element) or an array of the shape `like`.
pub fn ints_like<T: Int>(obj: &Bound<'_, PyAny>, name: &str, like: &[usize]) -> PyResult<Vec<T>> {
    let n: usize = like.iter().product();
    if !obj.is_instance_of::<PyUntypedArray>() {
        if let Ok(v) = obj.extract::<i128>() {
            check_range(name, v, T::MIN, T::MAX)?;
            return Ok(vec![T::from_i128(v); n]);
        }
    }
    let a = ints::<T>(obj, name)?;
    if a.shape != like {
        return Err(value_error(format!(
            "{name}: expected one integer or an array of shape {like:?}, got shape {:?}",
            a.shape
        )));
    }
    Ok(a.data)
}

/// A new array of `shape` holding `data`.
pub fn out<'py, T: Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, data).reshape(shape)?.into_any())
}

/// `ValueError` unless the array has `ndim` dimensions.
pub fn check_ndim<T>(a: &Arr<T>, name: &str, ndims: &[usize]) -> PyResult<()> {
    if ndims.contains(&a.shape.len()) {
        Ok(())
    } else {
        Err(value_error(format!(
            "{name}: expected {} dimension(s), got shape {:?}",
            ndims
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" or "),
            a.shape
        )))
    }
}

/// `ValueError` unless `got == want`.
pub fn check_shape(name: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(value_error(format!(
            "{name}: expected shape {want:?}, got {got:?}"
        )))
    }
}
