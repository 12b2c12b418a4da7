//! Large sample columns, backed by transparent huge pages where the kernel
//! offers them.
//!
//! An exact-mode run of 10 million iterations keeps about 560 MB of
//! per-iteration values (280 MB of keys when it returns only its report).
//! Backed by 4 KiB pages, that memory costs one page fault per page on
//! first touch (about 140,000 a run, a third of a second of system time on
//! this project's machines); advised for transparent huge pages, about 280. The advice changes how the kernel backs the pages,
//! never their contents, and is ignored where it is not supported.
//!
//! This is the crate's one `unsafe` call: `madvise` has no safe wrapper in
//! `std`, and a mapping crate would mean replacing `Vec<f64>` columns (which
//! the engine, the partial results and the samples hand out) with its own
//! type.
#![allow(
    unsafe_code,
    reason = "one madvise call, on memory this module allocated; see the SAFETY comment"
)]

/// The transparent huge page size of x86-64 (and of arm64 with 4 KiB
/// pages); columns smaller than two of them are not advised.
const HUGE_PAGE: usize = 2 << 20;

/// A column of `len` zeros, its pages advised for transparent huge pages
/// before they are first touched (a large zeroed allocation is normally
/// fresh anonymous memory the allocator has not written; where it is reused
/// heap memory instead, the advice is still harmless).
pub(crate) fn zeroed_column(len: usize) -> Vec<f64> {
    let column = vec![0.0f64; len];
    advise_huge_pages(&column);
    column
}

/// A column of `len` zero keys, advised as [`zeroed_column`] is.
pub(crate) fn zeroed_keys(len: usize) -> Vec<u32> {
    let column = vec![0u32; len];
    advise_huge_pages(&column);
    column
}

#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(column: &[T]) {
    let bytes = std::mem::size_of_val(column);
    if bytes < 2 * HUGE_PAGE {
        return;
    }
    let start = column.as_ptr().cast::<u8>();
    let first = (start as usize).next_multiple_of(HUGE_PAGE) - start as usize;
    let end = (start as usize + bytes) / HUGE_PAGE * HUGE_PAGE - start as usize;
    if end <= first {
        return;
    }
    // SAFETY: the range [first, end) lies inside the column's own
    // allocation and starts on a page boundary. MADV_HUGEPAGE only marks
    // that range as eligible for huge pages: it never unmaps, moves or
    // changes the memory, so no reference to it is invalidated. A failure
    // (huge pages disabled, an old kernel) leaves the pages as they were,
    // which is correct, so the result is not checked.
    unsafe {
        libc::madvise(
            start.wrapping_add(first).cast_mut().cast(),
            end - first,
            libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_column: &[T]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_zeroed_and_writable_at_any_size() {
        for len in [0, 1, 1000, (2 * HUGE_PAGE) / 8 + 3, (5 * HUGE_PAGE) / 8] {
            let mut c = zeroed_column(len);
            assert_eq!(c.len(), len);
            assert!(c.iter().all(|x| x.to_bits() == 0));
            for (i, x) in c.iter_mut().enumerate() {
                *x = i as f64;
            }
            assert!(c.iter().enumerate().all(|(i, x)| *x == i as f64));
        }
    }
}
