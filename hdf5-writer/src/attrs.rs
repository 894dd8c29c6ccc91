//! Reading and writing scalar and string attributes, on the root group or any object.

use std::str::FromStr;

use hdf5::types::VarLenUnicode;
use hdf5::{H5Type, Location};

/// Creates attribute `name` holding `value`.
pub(crate) fn create<T: H5Type>(at: &Location, name: &str, value: &T) -> hdf5::Result<()> {
    at.new_attr::<T>().create(name)?.write_scalar(value)
}

/// Overwrites the existing attribute `name` with `value`.
pub(crate) fn write<T: H5Type>(at: &Location, name: &str, value: &T) -> hdf5::Result<()> {
    at.attr(name)?.write_scalar(value)
}

/// Creates a variable-length UTF-8 string attribute.
pub(crate) fn create_str(at: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    create(at, name, &vlen(value)?)
}

/// Overwrites an existing string attribute.
pub(crate) fn write_str(at: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    write(at, name, &vlen(value)?)
}

/// Reads a scalar attribute.
pub(crate) fn read<T: H5Type>(at: &Location, name: &str) -> hdf5::Result<T> {
    at.attr(name)?.read_scalar::<T>()
}

/// Reads a string attribute.
pub(crate) fn read_str(at: &Location, name: &str) -> hdf5::Result<String> {
    read::<VarLenUnicode>(at, name).map(|s| s.as_str().to_owned())
}

fn vlen(value: &str) -> hdf5::Result<VarLenUnicode> {
    // NUL is rejected by RecordingMeta::validate, and timestamps and JSON never contain it.
    VarLenUnicode::from_str(value).map_err(|e| hdf5::Error::from(e.to_string()))
}
