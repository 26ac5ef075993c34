//! The guest-physical → node map as ranges, compact enough to report for a
//! 1 GiB guest: consecutive pages whose nodes repeat one short pattern make
//! one range (a run on one node is the pattern of one; 4 KiB interleave over
//! two nodes is `[0, 1]`), so a policy's map takes a handful of ranges.

use heapless::Vec;

/// Nodes a pattern repeats at most.
pub const MAX_PATTERN: usize = 8;

/// A page's node (its domain), or None where the page is not backed.
pub type Node = Option<u32>;

/// `pages` pages from page number `first`, page i on `pattern[i % len]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub pages: u64,
    pub pattern: Vec<Node, MAX_PATTERN>,
}

/// Builds ranges from each page's node, in page order; hands each finished
/// range to `out`.
pub struct Compactor<F: FnMut(Range)> {
    current: Option<Range>,
    out: F,
}

impl<F: FnMut(Range)> Compactor<F> {
    pub fn new(out: F) -> Self {
        Self { current: None, out }
    }

    /// The next page's node.
    pub fn push(&mut self, node: Node) {
        if let Some(r) = &mut self.current {
            let len = r.pattern.len() as u64;
            if r.pattern[(r.pages % len) as usize] == node {
                r.pages += 1;
                return;
            }
            // Seen the pattern once only so far: it may be longer.
            if r.pages == len && r.pattern.push(node).is_ok() {
                r.pages += 1;
                return;
            }
        }
        let first = self.current.as_ref().map_or(0, |r| r.first + r.pages);
        self.finish();
        self.current = Some(Range {
            first,
            pages: 1,
            pattern: core::iter::once(node).collect(),
        });
    }

    /// Hands over the last range.
    pub fn finish(&mut self) {
        if let Some(r) = self.current.take() {
            (self.out)(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(nodes: &[Node]) -> std::vec::Vec<(u64, u64, std::vec::Vec<Node>)> {
        let mut out = std::vec::Vec::new();
        let mut c = Compactor::new(|r: Range| out.push((r.first, r.pages, r.pattern.to_vec())));
        for &n in nodes {
            c.push(n);
        }
        c.finish();
        out
    }

    #[test]
    fn runs_and_repeating_patterns_make_one_range_each() {
        let (a, b) = (Some(0), Some(1));
        assert_eq!(
            compact(&[a, a, a, b, b]),
            [(0, 3, vec![a]), (3, 2, vec![b])]
        );
        assert_eq!(
            compact(&[a, b, a, b, a, b, a]),
            [(0, 7, vec![a, b])],
            "interleave"
        );
        assert_eq!(
            compact(&[a, a, b, a, a, b]),
            [(0, 2, vec![a]), (2, 4, vec![b, a, a])],
            "a weighted cycle, found after its first run"
        );
        assert_eq!(
            compact(&[None, None, a, None]),
            [(0, 2, vec![None]), (2, 2, vec![a, None])]
        );
        assert!(compact(&[]).is_empty());
    }

    #[test]
    fn a_gib_of_interleaved_pages_is_one_range() {
        let nodes: std::vec::Vec<Node> = (0..262_144).map(|i| Some(i % 2)).collect();
        assert_eq!(compact(&nodes), [(0, 262_144, vec![Some(0), Some(1)])]);
    }
}
