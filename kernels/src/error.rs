use core::fmt;

/// Why a kernel refused its arguments. Kernels check shapes and parameter ranges
/// once, before any arithmetic, and never write to their outputs on error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// A slice has the wrong length.
    Length {
        /// Which argument.
        what: &'static str,
        /// Length the kernel needs.
        expected: usize,
        /// Length it was given.
        got: usize,
    },
    /// A dimension must be a multiple of something (group size, head count).
    NotMultiple {
        /// Which dimension.
        what: &'static str,
        /// Its value.
        value: usize,
        /// Required divisor.
        of: usize,
    },
    /// A parameter is outside the range the contract allows.
    Param {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KernelError::Length {
                what,
                expected,
                got,
            } => {
                write!(f, "{what}: expected length {expected}, got {got}")
            }
            KernelError::NotMultiple { what, value, of } => {
                write!(f, "{what} = {value} is not a multiple of {of}")
            }
            KernelError::Param {
                what,
                value,
                min,
                max,
            } => {
                write!(f, "{what} = {value} is outside [{min}, {max}]")
            }
        }
    }
}

impl core::error::Error for KernelError {}

/// Checks `got == expected`.
pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), KernelError> {
    if expected == got {
        Ok(())
    } else {
        Err(KernelError::Length {
            what,
            expected,
            got,
        })
    }
}

/// Checks `value % of == 0`.
pub(crate) fn check_multiple(
    what: &'static str,
    value: usize,
    of: usize,
) -> Result<(), KernelError> {
    if of != 0 && value % of == 0 {
        Ok(())
    } else {
        Err(KernelError::NotMultiple { what, value, of })
    }
}

/// Checks `min <= value <= max`.
pub(crate) fn check_range(
    what: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), KernelError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(KernelError::Param {
            what,
            value,
            min,
            max,
        })
    }
}
