//! The decisions of adaptive placement, apart from how accesses are seen
//! (hinting faults, accessed/dirty bits) and how pages move
//! (`vcpu::memory::GuestMemory::migrate`). Pure: each sampling period, a
//! page's record gets the nodes that touched it and whether it was written;
//! `decide` says what to do with it.
//!
//! - A page touched by one node only, for `STABLE` periods in a row, on
//!   another node: move it there (private data follows its user).
//! - A page touched by several nodes and written (shared, write-hot): spread
//!   it, by page number over those nodes, so that no node serves them all.
//! - A page touched by several nodes and never written (read-mostly):
//!   replicate it on each of them (a write collapses the replicas).
//! - Hysteresis: a page that moved stays `COOLDOWN` periods whatever its
//!   record says, so it does not bounce between nodes whose users alternate.
//! - At most a budget of moves per period, first come first served.

use heapless::Vec;

/// Periods a page must be private to one node before it moves there.
pub const STABLE: u8 = 2;
/// Periods a page that moved stays where it is.
pub const COOLDOWN: u8 = 4;

/// Nodes as a bit set (node i: bit i).
pub type NodeSet = u16;

/// What one page has seen, period after period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Where the page is now.
    pub node: usize,
    /// The private node of the last periods and for how many in a row.
    pub streak: Option<(usize, u8)>,
    /// Periods left before the page may move again.
    pub cooldown: u8,
    /// The page is replicated (read-mostly on several nodes).
    pub replicated: bool,
}

/// One period's observation of a page: the nodes whose CPUs touched it and
/// whether any wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub nodes: NodeSet,
    pub written: bool,
}

/// What to do with a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Stay,
    /// Move to this node.
    Migrate(usize),
    /// Copy to each of these nodes (each node's CPUs map their own copy).
    Replicate(NodeSet),
    /// A write reached a replicated page: back to one copy, on this node.
    Collapse(usize),
}

fn only(nodes: NodeSet) -> Option<usize> {
    (nodes.count_ones() == 1).then(|| nodes.trailing_zeros() as usize)
}

/// The `n`th node of `nodes`, counting from the lowest, modulo their number.
fn nth(nodes: NodeSet, n: u64) -> usize {
    let count = u64::from(nodes.count_ones().max(1));
    let mut left = n % count;
    let mut set = nodes;
    loop {
        let node = set.trailing_zeros() as usize;
        if left == 0 || set & (set - 1) == 0 {
            return node;
        }
        set &= set - 1;
        left -= 1;
    }
}

/// Updates `record` with one period's `seen` for page number `page`, and
/// says what to do; `budget` is the moves left this period (a move takes
/// one). Pages not touched this period keep their streak.
pub fn decide(record: &mut Record, seen: Seen, page: u64, budget: &mut usize) -> Decision {
    record.cooldown = record.cooldown.saturating_sub(1);
    if seen.nodes == 0 {
        return Decision::Stay;
    }
    if record.replicated {
        if !seen.written {
            return Decision::Stay;
        }
        // The first write collapses the copies, onto a node that wrote... or
        // touched it: the lowest of them (a record does not say who wrote).
        record.replicated = false;
        record.streak = None;
        record.node = nth(seen.nodes, 0);
        return Decision::Collapse(record.node);
    }
    let decision = match only(seen.nodes) {
        Some(node) => {
            let streak = match record.streak {
                Some((n, k)) if n == node => k.saturating_add(1),
                _ => 1,
            };
            record.streak = Some((node, streak));
            if node != record.node && streak >= STABLE {
                Decision::Migrate(node)
            } else {
                Decision::Stay
            }
        }
        None => {
            record.streak = None;
            if seen.written {
                let target = nth(seen.nodes, page);
                if target != record.node {
                    Decision::Migrate(target)
                } else {
                    Decision::Stay
                }
            } else {
                Decision::Replicate(seen.nodes)
            }
        }
    };
    match decision {
        Decision::Migrate(_) | Decision::Replicate(_) if record.cooldown > 0 || *budget == 0 => {
            Decision::Stay
        }
        Decision::Migrate(node) => {
            *budget -= 1;
            record.node = node;
            record.cooldown = COOLDOWN;
            Decision::Migrate(node)
        }
        Decision::Replicate(nodes) => {
            *budget -= 1;
            record.replicated = true;
            Decision::Replicate(nodes)
        }
        other => other,
    }
}

/// Runs `decide` over a period's observations of many pages, in page
/// order, within `budget` moves: the pages' decisions.
pub fn period<const N: usize>(
    records: &mut [Record],
    seen: &[Seen],
    mut budget: usize,
) -> Vec<Decision, N> {
    records
        .iter_mut()
        .zip(seen)
        .enumerate()
        .map(|(page, (r, &s))| decide(r, s, page as u64, &mut budget))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const N0: NodeSet = 1;
    const N1: NodeSet = 2;
    const BOTH: NodeSet = 3;

    fn seen(nodes: NodeSet, written: bool) -> Seen {
        Seen { nodes, written }
    }

    /// Replays `trace` (one observation per period) on a page that starts
    /// on node 0: the decisions, period by period.
    fn replay(trace: &[Seen]) -> std::vec::Vec<Decision> {
        let mut r = Record::default();
        trace
            .iter()
            .map(|&s| decide(&mut r, s, 0, &mut usize::MAX.clone()))
            .collect()
    }

    #[test]
    fn a_private_page_follows_its_user_after_it_proves_stable() {
        let d = replay(&[seen(N1, true), seen(N1, true), seen(N1, false)]);
        assert_eq!(d, [Decision::Stay, Decision::Migrate(1), Decision::Stay]);
        let home = replay(&[seen(N0, true); 4]);
        assert!(home.iter().all(|&d| d == Decision::Stay), "already local");
    }

    #[test]
    fn a_page_whose_users_alternate_does_not_bounce() {
        // Node 1 for two periods, then node 0 and node 1 in turns: it moves
        // once, then the cooldown and the broken streaks keep it.
        let mut trace = vec![seen(N1, true), seen(N1, true)];
        for i in 0..10 {
            trace.push(seen(if i % 2 == 0 { N0 } else { N1 }, true));
        }
        let moves = replay(&trace)
            .iter()
            .filter(|d| matches!(d, Decision::Migrate(_)))
            .count();
        assert_eq!(moves, 1);
    }

    #[test]
    fn a_phase_change_is_followed_within_cooldown_and_stability() {
        // Node 1's page for 3 periods, then node 0's for good: it moves to 1,
        // then back to 0 once the cooldown is over and node 0 proved stable.
        let mut trace = vec![seen(N1, true); 3];
        trace.extend([seen(N0, true); 8]);
        let d = replay(&trace);
        let back = d.iter().position(|&x| x == Decision::Migrate(0)).unwrap();
        assert_eq!(d[1], Decision::Migrate(1));
        assert!(back - 1 <= COOLDOWN as usize, "back after {back} periods");
        assert_eq!(
            d.iter()
                .filter(|x| matches!(x, Decision::Migrate(_)))
                .count(),
            2
        );
    }

    #[test]
    fn shared_pages_spread_when_written_and_replicate_when_read() {
        // Written by both nodes: page numbers alternate between them.
        let mut records = [Record::default(); 4];
        let d: Vec<Decision, 4> = period(&mut records, &[seen(BOTH, true); 4], 8);
        assert_eq!(
            d.as_slice(),
            [
                Decision::Stay,
                Decision::Migrate(1),
                Decision::Stay,
                Decision::Migrate(1)
            ]
        );
        // Read by both, never written: replicated; a later write collapses it.
        let r = replay(&[seen(BOTH, false), seen(BOTH, false), seen(N1, true)]);
        assert_eq!(
            r,
            [
                Decision::Replicate(BOTH),
                Decision::Stay,
                Decision::Collapse(1)
            ]
        );
    }

    #[test]
    fn moves_stop_when_the_period_budget_is_spent() {
        let mut records = [Record::default(); 6];
        let trace = [seen(N1, true); 6];
        let _: Vec<Decision, 6> = period(&mut records, &trace, 10);
        let d: Vec<Decision, 6> = period(&mut records, &trace, 2);
        let moved = d
            .iter()
            .filter(|x| matches!(x, Decision::Migrate(1)))
            .count();
        assert_eq!(moved, 2, "{d:?}");
        // The others move in the next periods.
        let d: Vec<Decision, 6> = period(&mut records, &trace, 10);
        assert_eq!(
            d.iter()
                .filter(|x| matches!(x, Decision::Migrate(1)))
                .count(),
            4
        );
    }
}
