//! Reading typed values out of `Any` rows, where IDs are UUID text.

use std::str::FromStr;

use cc_core::Id;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

pub(crate) fn id<T>(row: &AnyRow, column: &str) -> Result<Id<T>> {
    let text: String = row.try_get(column)?;
    Id::from_str(&text).map_err(|_| StoreError::Corrupt(format!("{column} is not a UUID")))
}

pub(crate) fn opt_id<T>(row: &AnyRow, column: &str) -> Result<Option<Id<T>>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        Id::from_str(&t).map_err(|_| StoreError::Corrupt(format!("{column} is not a UUID")))
    })
    .transpose()
}

pub(crate) fn u32_col(row: &AnyRow, column: &str) -> Result<u32> {
    let v: i64 = row.try_get(column)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}

pub(crate) fn u64_col(row: &AnyRow, column: &str) -> Result<u64> {
    let v: i64 = row.try_get(column)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}
