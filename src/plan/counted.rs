//! The rows of a batch an aggregate of SegQL's own takes, as one mask: its loops visit
//! the mask's set bits rather than testing a filter and a validity per row.

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};

/// Which rows of a batch of `len` rows an aggregate takes: those its filter `keep` holds
/// true (all without a filter) whose value (or time) is not null, by `nulls`.
pub fn counted_rows(
    keep: Option<&BooleanArray>,
    nulls: Option<&NullBuffer>,
    len: usize,
) -> BooleanBuffer {
    let kept = keep.map(|keep| match keep.nulls() {
        Some(nulls) => keep.values() & nulls.inner(),
        None => keep.values().clone(),
    });
    match (kept, nulls) {
        (Some(kept), Some(nulls)) => &kept & nulls.inner(),
        (Some(kept), None) => kept,
        (None, Some(nulls)) => nulls.inner().clone(),
        (None, None) => BooleanBuffer::new_set(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(mask: &BooleanBuffer) -> Vec<usize> {
        mask.set_indices().collect()
    }

    #[test]
    fn a_row_counts_where_its_filter_is_true_and_its_value_not_null() {
        let keep = BooleanArray::from(vec![Some(true), Some(false), None, Some(true), Some(true)]);
        let nulls = NullBuffer::from(vec![true, true, true, false, true]);
        assert_eq!(rows(&counted_rows(Some(&keep), Some(&nulls), 5)), [0, 4]);
        assert_eq!(rows(&counted_rows(Some(&keep), None, 5)), [0, 3, 4]);
        assert_eq!(rows(&counted_rows(None, Some(&nulls), 5)), [0, 1, 2, 4]);
        assert_eq!(rows(&counted_rows(None, None, 3)), [0, 1, 2]);
    }

    #[test]
    fn a_sliced_filter_is_read_from_its_offset() {
        let keep = BooleanArray::from(vec![Some(false), None, Some(true), Some(false)]);
        let keep = keep.slice(1, 3);
        let nulls = NullBuffer::from(vec![true, true, true, true, false]).slice(2, 3);
        assert_eq!(rows(&counted_rows(Some(&keep), Some(&nulls), 3)), [1]);
    }
}
