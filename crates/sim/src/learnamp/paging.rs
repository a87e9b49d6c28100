//! Pagination (§8): `page` (1-based) and `perPage` in, `Total`, `Per-Page` and
//! `Total-Pages` headers out.

use axum::http::{HeaderMap, HeaderValue};

use super::error::{ApiError, FieldErrors};
use super::form::Form;

/// Page size when `perPage` is absent (the reference leaves it unconfirmed).
pub(super) const DEFAULT_PER_PAGE: u32 = 25;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Page size after the cap.
    pub per_page: u32,
}

impl PageRequest {
    /// Reads `page` and `perPage`; values below 1 or not numeric are 400; `perPage` is capped.
    pub(super) fn from_query(query: &Form, max_per_page: u32) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let page = positive(query.get("page"), 1).unwrap_or_else(|| {
            errors.add("page", "is invalid");
            1
        });
        let per_page = positive(query.get("perPage"), DEFAULT_PER_PAGE).unwrap_or_else(|| {
            errors.add("perPage", "is invalid");
            1
        });
        if !errors.is_empty() {
            return Err(ApiError::params(errors));
        }
        Ok(Self {
            page,
            per_page: per_page.min(max_per_page.max(1)),
        })
    }

    /// The slice of `items` on this page and the pagination headers.
    pub(super) fn apply<T: Clone>(&self, items: &[T]) -> (Vec<T>, HeaderMap) {
        let total = items.len();
        let per_page = self.per_page as usize;
        let total_pages = total.div_ceil(per_page);
        let start = (self.page as usize - 1).saturating_mul(per_page);
        let page: Vec<T> = items.iter().skip(start).take(per_page).cloned().collect();
        let mut headers = HeaderMap::new();
        headers.insert("Total", HeaderValue::from(total as u64));
        headers.insert("Per-Page", HeaderValue::from(per_page as u64));
        headers.insert("Total-Pages", HeaderValue::from(total_pages as u64));
        (page, headers)
    }
}

/// A positive integer parameter: `default` when absent, `None` when invalid.
fn positive(raw: Option<&str>, default: u32) -> Option<u32> {
    match raw {
        None => Some(default),
        Some(v) => v.trim().parse::<u32>().ok().filter(|n| *n >= 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(q: &str, max: u32) -> Result<PageRequest, ApiError> {
        PageRequest::from_query(&Form::from_urlencoded(q.as_bytes()).expect("form"), max)
    }

    #[test]
    fn defaults_and_cap() {
        assert_eq!(
            request("", 100).ok(),
            Some(PageRequest {
                page: 1,
                per_page: 25
            })
        );
        assert_eq!(
            request("perPage=500&page=3", 100).ok(),
            Some(PageRequest {
                page: 3,
                per_page: 100
            })
        );
        assert!(request("page=0", 100).is_err());
        assert!(request("perPage=x", 100).is_err());
    }

    #[test]
    fn headers_and_slices() {
        let items: Vec<u32> = (1..=7).collect();
        let (page, headers) = PageRequest {
            page: 2,
            per_page: 3,
        }
        .apply(&items);
        assert_eq!(page, vec![4, 5, 6]);
        assert_eq!(headers["Total"], "7");
        assert_eq!(headers["Per-Page"], "3");
        assert_eq!(headers["Total-Pages"], "3");
        let (beyond, _) = PageRequest {
            page: 9,
            per_page: 3,
        }
        .apply(&items);
        assert!(beyond.is_empty());
    }
}
