//! Paged lists. The seeds show `{items, count}` (merchants); other list endpoints may say
//! `results`, so both are accepted. `count` is the total across pages when the API gives it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(alias = "results", default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub count: Option<u64>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            count: None,
        }
    }
}

impl<T> Page<T> {
    /// Whether another page may follow one fetched at `offset` with `limit`: by `count` when
    /// the API gives it, otherwise by whether this page came back full.
    pub fn has_more(&self, offset: u64, limit: u64) -> bool {
        let fetched = offset + self.items.len() as u64;
        match self.count {
            Some(total) => fetched < total && !self.items.is_empty(),
            None => limit > 0 && self.items.len() as u64 >= limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Item {
        id: String,
    }

    #[test]
    fn accepts_items_or_results() {
        let a: Page<Item> =
            serde_json::from_str(r#"{"items": [{"id": "a"}], "count": 3}"#).unwrap();
        assert_eq!(a.items[0].id, "a");
        assert_eq!(a.count, Some(3));
        let b: Page<Item> =
            serde_json::from_str(r#"{"results": [{"id": "b"}], "next": null}"#).unwrap();
        assert_eq!(b.items[0].id, "b");
        assert_eq!(b.count, None);
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::json!({"items": [{"id": "b"}], "count": null})
        );
    }

    #[test]
    fn knows_when_more_pages_follow() {
        let page = |n: usize, count: Option<u64>| Page {
            items: (0..n).map(|i| Item { id: i.to_string() }).collect(),
            count,
        };
        assert!(page(2, Some(5)).has_more(0, 2));
        assert!(!page(1, Some(5)).has_more(4, 2));
        assert!(!page(0, Some(5)).has_more(2, 2));
        assert!(page(2, None).has_more(0, 2));
        assert!(!page(1, None).has_more(0, 2));
    }
}
