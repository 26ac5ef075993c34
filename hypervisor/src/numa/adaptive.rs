//! The decisions of adaptive placement, apart from how accesses are seen
//! (`vm::sampler`: sampled hinting faults) and how pages move
//! (`vm::memory::GuestMemory::migrate`). Pure: each time the sampler
//! looks at a page, its record gets the nodes whose CPUs touched it since
//! the last look and whether one wrote it; `decide` says where it should be.
//!
//! - Each node's recent touches are a small decaying count (a quarter
//!   forgotten at each look); the page wants
//!   the node where those touches cost least by the machine's distances:
//!   the oracle's rule, on the sampled accesses. A private page wants its
//!   user's node; a page shared by several, the one nearest to them all.
//! - Samples are noisy (the sampler sees some touches, not all): nodes whose
//!   cost is within `MARGIN` of the least are as good, and a page on one of
//!   them stays. Which nodes share a page is surer than how much each
//!   touches it: a page a look saw several nodes touch also stays on a
//!   node good for its users each counted once. Shared pages that must
//!   move spread over those nodes by page number, so that no node serves
//!   them all.
//! - Hysteresis: a page moves only when it wanted the same node at `STABLE`
//!   looks in a row that saw it touched, and not again for `COOLDOWN` looks
//!   after a move (three times as long after a move back, a bounce), so it
//!   does not bounce between nodes whose users alternate.
//! - A page read by several nodes and written by none for 3 looks is
//!   replicated on each of them, where the sampler can (`STABLE` looks in
//!   a row of this); a write collapses the copies (`vm::memory`).
//! - A 2 MiB page used by several nodes is split into 4 KiB pages instead
//!   (`STABLE` looks in a row of this), so that each part goes where it is
//!   used: a 2 MiB page often holds several users' data.
//! - At most a budget of moves per look at the window (rate limit), and
//!   looks less frequent while the windows they find stay settled (`Pace`).

use super::topology::MAX_NODES;

/// Looks in a row a page must want one node before it moves there.
pub const STABLE: u8 = 2;
/// Looks after a move during which a page stays.
pub const COOLDOWN: u8 = 4;
/// The most looks are slowed: 16 times (`Pace`).
pub const SLOWEST: u8 = 4;
/// Settled looks in a row that slow looks down a step.
const CALM: u8 = 4;
/// A node's count saturates here (4 bits); a look adds 2 for a node that
/// touched the page and takes a quarter away (rounded up) from every node:
/// a node that touches the page at every look holds it at 5.
const COUNT_MAX: u8 = 15;
/// Nodes whose cost is within an eighth of the least are as good.
const MARGIN: u32 = 8;

/// Nodes as a bit set (node i: bit i).
pub type NodeSet = u16;

/// What one page has seen, look after look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Per node: its recent touches (each look decays them by a quarter).
    pub counts: [u8; MAX_NODES],
    /// The node the page wanted at the last looks, and how many in a row.
    pub want: u8,
    pub streak: u8,
    /// Looks left before the page may move again.
    pub cooldown: u8,
    /// The node the page last moved away from, if any: a move back there
    /// is a bounce.
    pub left: Option<u8>,
    /// Looks left before the page counts as unwritten again (3 after a
    /// write), and how many looks in a row it was read by several nodes
    /// and written by none (or, 2 MiB, used by several).
    pub writes: u8,
    pub read_shared: u8,
}

impl Record {
    /// Packed: the counts in 64 bits (4 each), the rest in 19: want (4),
    /// streak (2), cooldown (4), left (5: node + 1, 0 none), writes (2),
    /// read_shared (2). Zeros are the empty record.
    pub fn pack(&self) -> (u64, u32) {
        let counts = self.counts.iter().enumerate().fold(0u64, |a, (i, &c)| {
            a | (u64::from(c.min(COUNT_MAX)) << (4 * i))
        });
        let rest = u32::from(self.want & 0xf)
            | (u32::from(self.streak.min(3)) << 4)
            | (u32::from(self.cooldown.min(15)) << 6)
            | (u32::from(self.left.map_or(0, |n| (n & 0xf) + 1)) << 10)
            | (u32::from(self.writes.min(3)) << 15)
            | (u32::from(self.read_shared.min(3)) << 17);
        (counts, rest)
    }

    pub fn unpack((counts, rest): (u64, u32)) -> Self {
        let field = |at: u32, width: u32| ((rest >> at) & ((1 << width) - 1)) as u8;
        Self {
            counts: core::array::from_fn(|i| ((counts >> (4 * i)) & 0xf) as u8),
            want: field(0, 4),
            streak: field(4, 2),
            cooldown: field(6, 4),
            left: field(10, 5).checked_sub(1),
            writes: field(15, 2),
            read_shared: field(17, 2),
        }
    }

    /// Whether the page, seen touched by `seen` at a look, is not settled
    /// on `here`: it wants another node, is on its way to being replicated
    /// or split, or one other node alone touched it.
    pub fn unsettled(&self, seen: Seen, here: usize) -> bool {
        let alone = seen.nodes.count_ones() == 1 && seen.nodes != 1 << here;
        usize::from(self.want) != here || self.read_shared > 0 || alone
    }
}

/// How often the sampler looks at its window: after `rounds()` periods,
/// `base << slow`. Each `CALM` looks in a row that find the window settled
/// (at most an eighth of its touched pages unsettled) make looks half as
/// frequent, down to `base << SLOWEST`; one that does not brings them back
/// to every `base` periods. As Linux AutoNUMA lengthens its scan period
/// while faults find pages local: a settled guest pays little for
/// sampling (a window revoked or swept once per look), a change is
/// followed as soon as a look sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pace {
    slow: u8,
    calm: u8,
}

impl Pace {
    pub fn rounds(&self, base: u32) -> u32 {
        base << self.slow
    }

    /// After a look at a window: `seen` pages touched, `unsettled` of them.
    pub fn after(&mut self, seen: u32, unsettled: u32) {
        if unsettled * MARGIN > seen {
            *self = Pace::default();
        } else if self.slow < SLOWEST {
            self.calm += 1;
            if self.calm == CALM {
                *self = Pace {
                    slow: self.slow + 1,
                    calm: 0,
                };
            }
        }
    }
}

/// What the sampler saw of a page since its last look: the nodes whose
/// CPUs touched it and whether any wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub nodes: NodeSet,
    pub written: bool,
}

/// What to do with a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Stay,
    /// Move to node `to`; `bounce`: back to the node it last left.
    Migrate {
        to: usize,
        bounce: bool,
    },
    /// Copy to each of these nodes, whose CPUs read their own copy (a
    /// write collapses the copies).
    Replicate(NodeSet),
    /// Split the 2 MiB page into 4 KiB ones, each then seen and placed on
    /// its own.
    Split,
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

/// The cost on each node (of the first `distance.len()`) of accesses in
/// the proportions of `counts`.
fn costs(counts: &[u8; MAX_NODES], distance: &[[u8; MAX_NODES]]) -> [u32; MAX_NODES] {
    core::array::from_fn(|n| {
        distance
            .iter()
            .zip(counts)
            .map(|(from, &c)| u32::from(c) * u32::from(from[n]))
            .sum()
    })
}

/// The nodes (of the first `distance.len()`) where accesses in the
/// proportions of `counts` cost at most `slack` eighths more than the
/// least; empty when there are no accesses.
fn cheapest(counts: &[u8; MAX_NODES], distance: &[[u8; MAX_NODES]], slack: u32) -> NodeSet {
    if counts.iter().all(|&c| c == 0) {
        return 0;
    }
    let cost = costs(counts, distance);
    let nodes = distance.len();
    let best = cost[..nodes].iter().copied().min().unwrap_or(0);
    (0..nodes)
        .filter(|&n| cost[n] * MARGIN <= best * (MARGIN + slack))
        .fold(0, |set, n| set | (1 << n))
}

/// A page as the sampler finds it: its number, its node, its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub number: u64,
    pub node: usize,
    /// 2 MiB, not 4 KiB.
    pub large: bool,
}

/// Updates `record` of the page `placed` with what was `seen` since the
/// last look, and says where it goes; `budget` is the moves left for this
/// look at the window (a move, a replication or a split takes one);
/// `replicate`: whether pages may be replicated.
pub fn decide(
    record: &mut Record,
    seen: Seen,
    placed: Placed,
    distance: &[[u8; MAX_NODES]],
    replicate: bool,
    budget: &mut usize,
) -> Decision {
    let Placed {
        number: page,
        node: here,
        large,
    } = placed;
    record.cooldown = record.cooldown.saturating_sub(1);
    for (n, c) in record.counts.iter_mut().enumerate() {
        let touched = seen.nodes & (1 << n) != 0;
        *c = (*c - c.div_ceil(4) + if touched { 2 } else { 0 }).min(COUNT_MAX);
    }
    // Only looks that saw the page count towards its streak.
    let good = cheapest(&record.counts, distance, 1);
    if seen.nodes == 0 || good == 0 {
        return Decision::Stay;
    }
    record.writes = if seen.written {
        3
    } else {
        record.writes.saturating_sub(1)
    };
    let users = (0..distance.len())
        .filter(|&n| record.counts[n] > 0)
        .fold(0, |set: NodeSet, n| set | (1 << n));
    let shared = users.count_ones() > 1;
    // Used by several nodes: a 2 MiB page splits; a page read by several
    // and written by none for a while gets a copy on each.
    let split = large && shared;
    if split || (replicate && shared && record.writes == 0) {
        record.read_shared = (record.read_shared + 1).min(3);
        if record.read_shared < STABLE || record.cooldown > 0 || *budget == 0 {
            return Decision::Stay;
        }
        *budget -= 1;
        record.read_shared = 0;
        record.cooldown = COOLDOWN;
        return if split {
            Decision::Split
        } else {
            Decision::Replicate(users)
        };
    }
    record.read_shared = 0;
    let want = if shared {
        // Which nodes use a shared page is seen more surely than how much
        // each does (a node whose vCPUs did not run in a look's rounds goes
        // unseen): where the look saw several, the page stays on a node
        // good by its counts or by its users each counted once. One that
        // must move goes to a node good for its users, by page number, so
        // that no node serves them all.
        let mut each = [0; MAX_NODES];
        for (n, e) in each.iter_mut().enumerate() {
            *e = u8::from(users & (1 << n) != 0);
        }
        let even = if seen.nodes.count_ones() > 1 {
            cheapest(&each, distance, 1)
        } else {
            0
        };
        if (good | even) & (1 << here) == 0 {
            nth(if even != 0 { even } else { good }, page)
        } else {
            here
        }
    } else if good & (1 << here) != 0 {
        here
    } else {
        nth(cheapest(&record.counts, distance, 0), page)
    };
    record.streak = if usize::from(record.want) == want && record.streak > 0 {
        (record.streak + 1).min(3)
    } else {
        1
    };
    record.want = want as u8;
    if want == here || record.streak < STABLE || record.cooldown > 0 || *budget == 0 {
        return Decision::Stay;
    }
    *budget -= 1;
    let bounce = record.left == Some(want as u8);
    record.left = Some(here as u8);
    // A page that came back stays three times as long: its users alternate.
    record.cooldown = if bounce { 3 * COOLDOWN } else { COOLDOWN };
    Decision::Migrate { to: want, bounce }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N0: NodeSet = 1;
    const N1: NodeSet = 2;
    const BOTH: NodeSet = 3;

    /// Two nodes, 10 and 20 apart.
    fn two() -> [[u8; MAX_NODES]; 2] {
        let mut d = [[20; MAX_NODES]; 2];
        d[0][0] = 10;
        d[1][1] = 10;
        d
    }

    /// Four nodes in a line, 0-1-2-3: the middle ones nearest to all.
    fn line() -> [[u8; MAX_NODES]; 4] {
        let mut d = [[0; MAX_NODES]; 4];
        for (i, row) in d.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().take(4).enumerate() {
                *x = 10 + 6 * i.abs_diff(j) as u8;
            }
        }
        d
    }

    fn seen(nodes: NodeSet, written: bool) -> Seen {
        Seen { nodes, written }
    }

    fn at(number: u64, node: usize, large: bool) -> Placed {
        Placed {
            number,
            node,
            large,
        }
    }

    /// Replays `trace` (one observation per look) on page `page`, starting
    /// on node 0 and moved as decided: the decisions, look by look.
    fn replay(trace: &[Seen], distance: &[[u8; MAX_NODES]], page: u64) -> Vec<Decision> {
        let (mut r, mut here) = (Record::default(), 0);
        trace
            .iter()
            .map(|&s| {
                let placed = at(page, here, false);
                let d = decide(&mut r, s, placed, distance, false, &mut usize::MAX.clone());
                if let Decision::Migrate { to, .. } = d {
                    here = to;
                }
                d
            })
            .collect()
    }

    fn moves(d: &[Decision]) -> Vec<(usize, usize)> {
        d.iter()
            .enumerate()
            .filter_map(|(i, d)| match d {
                Decision::Migrate { to, .. } => Some((i, *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn records_pack_and_unpack() {
        let mut r = Record {
            want: 13,
            streak: 2,
            cooldown: 12,
            left: Some(15),
            ..Record::default()
        };
        r.counts[0] = 15;
        r.counts[15] = 5;
        r.writes = 3;
        r.read_shared = 2;
        assert_eq!(Record::unpack(r.pack()), r);
        assert_eq!(Record::unpack((0, 0)), Record::default());
    }

    #[test]
    fn a_private_page_follows_its_user_after_it_proves_stable() {
        let d = replay(&[seen(N1, true); 4], &two(), 0);
        assert_eq!(moves(&d), [(1, 1)], "on the second look, once");
        let home = replay(&[seen(N0, true); 4], &two(), 0);
        assert!(moves(&home).is_empty(), "already local");
    }

    #[test]
    fn a_page_whose_users_alternate_does_not_bounce() {
        // Node 1 for two looks, then nodes 0 and 1 in turns: it moves once,
        // then the counts even out and the page stays.
        let mut trace = vec![seen(N1, true); 2];
        for i in 0..12 {
            trace.push(seen(if i % 2 == 0 { N0 } else { N1 }, true));
        }
        assert_eq!(moves(&replay(&trace, &two(), 0)).len(), 1);
    }

    #[test]
    fn a_phase_change_is_followed_at_the_third_look() {
        // Node 1's page for 6 looks, then node 0's for good: it moves to 1,
        // then back to 0 at the 3rd look after the change.
        let mut trace = vec![seen(N1, true); 6];
        trace.extend([seen(N0, true); 8]);
        let d = replay(&trace, &two(), 0);
        assert_eq!(moves(&d), [(1, 1), (8, 0)]);
        assert!(matches!(d[8], Decision::Migrate { bounce: true, .. }));
        // The same for a page only read.
        let mut trace = vec![seen(N1, false); 6];
        trace.extend([seen(N0, false); 8]);
        assert_eq!(moves(&replay(&trace, &two(), 0)), [(1, 1), (8, 0)]);
        // A look that saw both (the change within it) first: at the 3rd
        // look after it (page 1, which the tie does not spread to node 0).
        let mut trace = vec![seen(N1, true); 6];
        trace.push(seen(BOTH, true));
        trace.extend([seen(N0, true); 8]);
        let m = moves(&replay(&trace, &two(), 1));
        assert_eq!(m.last(), Some(&(9, 0)), "{m:?}");
    }

    #[test]
    fn shared_pages_go_where_their_accesses_cost_least() {
        // Read by every node of a line: the middle (1 or 2), not the ends.
        let d = replay(&[seen(0b1111, false); 3], &line(), 0);
        assert_eq!(moves(&d), [(1, 1)]);
        // Read by both of two nodes: equally good anywhere, it stays.
        assert!(moves(&replay(&[seen(BOTH, false); 4], &two(), 1)).is_empty());
        // Written by both: as good on either, it stays.
        assert!(moves(&replay(&[seen(BOTH, true); 4], &two(), 1)).is_empty());
        // Written by every node of a line from an end: spread by page
        // number over the middle ones.
        let written = [seen(0b1111, true); 3];
        assert_eq!(moves(&replay(&written, &line(), 0)), [(1, 1)]);
        assert_eq!(moves(&replay(&written, &line(), 1)), [(1, 2)]);
        // Used by node 0 twice as often as node 3 on the line: node 0 is
        // cheapest (2 x 10 + 1 x 28 against 2 x 16 + 1 x 22 at node 1).
        let mut r = Record::default();
        r.counts[0] = 6;
        r.counts[3] = 3;
        assert_eq!(cheapest(&r.counts, &line(), 0), N0);
    }

    #[test]
    fn pages_read_by_several_nodes_are_replicated_until_written() {
        let look = |r: &mut Record, s: Seen| decide(r, s, at(0, 0, false), &two(), true, &mut 8);
        let mut r = Record::default();
        // Written at first (vCPU 0 fills it), then read by both.
        assert_eq!(look(&mut r, seen(N0, true)), Decision::Stay);
        let reads: Vec<Decision> = (0..5).map(|_| look(&mut r, seen(BOTH, false))).collect();
        // The write is remembered 3 looks (the 3rd is read-shared already),
        // then a 2nd look in a row read-shared replicates it, once.
        assert_eq!(
            reads,
            [
                Decision::Stay,
                Decision::Stay,
                Decision::Stay,
                Decision::Replicate(BOTH),
                Decision::Stay
            ]
        );
        // A page one node reads is not replicated; without replication a
        // read-shared page stays where it is as good as anywhere.
        let mut r = Record::default();
        assert!((0..6).all(|_| look(&mut r, seen(N1, false)) != Decision::Replicate(N1)));
        let d = replay(&[seen(BOTH, false); 6], &two(), 0);
        assert!(d.iter().all(|&x| x == Decision::Stay));
    }

    #[test]
    fn a_2_mib_page_several_nodes_use_is_split_and_one_node_uses_moves() {
        let look = |r: &mut Record, s: Seen| decide(r, s, at(0, 0, true), &two(), true, &mut 8);
        let mut r = Record::default();
        let d: Vec<Decision> = (0..3).map(|_| look(&mut r, seen(BOTH, true))).collect();
        assert_eq!(d, [Decision::Stay, Decision::Split, Decision::Stay]);
        // Read only by both: split too, never replicated whole.
        let mut r = Record::default();
        let d: Vec<Decision> = (0..5).map(|_| look(&mut r, seen(BOTH, false))).collect();
        assert_eq!(
            d.iter().filter(|&&x| x == Decision::Split).count(),
            1,
            "{d:?}"
        );
        // One node's: moved whole.
        let mut r = Record::default();
        let d: Vec<Decision> = (0..2).map(|_| look(&mut r, seen(N1, true))).collect();
        assert!(matches!(d[1], Decision::Migrate { to: 1, .. }));
    }

    #[test]
    fn looks_slow_down_while_pages_stay_and_speed_up_when_they_move() {
        // Settled windows: a step slower every CALM looks, to SLOWEST.
        let mut pace = Pace::default();
        let steps: Vec<u32> = (0..24)
            .map(|_| {
                pace.after(64, 8);
                pace.rounds(4)
            })
            .collect();
        assert_eq!(&steps[..5], [4, 4, 4, 8, 8]);
        assert_eq!(steps[15..], [64; 9]);
        pace.after(0, 0);
        assert_eq!(pace.rounds(4), 64, "nothing touched");
        // More than an eighth of the touched pages unsettled: full pace.
        pace.after(64, 9);
        assert_eq!(pace, Pace::default());
        // A page is unsettled from the look that first sees its user change
        // (node 1 alone, it on node 0) until it moved.
        let mut r = Record::default();
        let look = |r: &mut Record, s: Seen, here| {
            let d = decide(r, s, at(0, here, false), &two(), false, &mut 8);
            (d, r.unsettled(s, here))
        };
        assert_eq!(look(&mut r, seen(N0, true), 0), (Decision::Stay, false));
        assert_eq!(look(&mut r, seen(N0, true), 0), (Decision::Stay, false));
        assert_eq!(look(&mut r, seen(N1, true), 0), (Decision::Stay, true));
        assert_eq!(look(&mut r, seen(N1, true), 0), (Decision::Stay, true));
        assert!(matches!(
            look(&mut r, seen(N1, true), 0).0,
            Decision::Migrate { to: 1, .. }
        ));
        assert_eq!(look(&mut r, seen(N1, true), 1), (Decision::Stay, false));
    }

    #[test]
    fn untouched_pages_forget_and_stay() {
        let d = replay(
            &[
                seen(N1, false),
                seen(0, false),
                seen(0, false),
                seen(0, false),
            ],
            &two(),
            0,
        );
        assert!(moves(&d).is_empty(), "{d:?}");
    }

    #[test]
    fn moves_stop_when_the_budget_is_spent() {
        let mut records = [Record::default(); 6];
        let mut look = |mut budget: usize| {
            let mut moved = 0;
            for (p, r) in records.iter_mut().enumerate() {
                let d = decide(
                    r,
                    seen(N1, true),
                    at(p as u64, 0, false),
                    &two(),
                    false,
                    &mut budget,
                );
                moved += usize::from(d != Decision::Stay);
            }
            moved
        };
        assert_eq!(look(10), 0, "not stable yet");
        assert_eq!(look(2), 2);
        assert_eq!(look(10), 4, "the others at the next look");
    }

    /// The benchmark's asymmetric 4 nodes: 1 and 2 nearest to all.
    fn asymmetric() -> [[u8; MAX_NODES]; 4] {
        let rows = [
            [10, 16, 22, 28],
            [18, 10, 16, 22],
            [22, 18, 10, 16],
            [28, 22, 18, 10],
        ];
        core::array::from_fn(|i| core::array::from_fn(|j| rows[i].get(j).copied().unwrap_or(0)))
    }

    #[test]
    fn pages_every_node_writes_seen_noisily_settle_without_bouncing() {
        // `random` on 4 nodes: each node writes every page, but a look sees
        // each node with odds 4 in 5 (a node whose vCPU did not run in its
        // rounds goes unseen). 512 pages from random nodes, 60 looks each:
        // every page ends on node 1 or 2 (within an eighth of the least
        // cost; 0 and 3 cost 15 % more or worse), and after 20 looks almost
        // none moves.
        let d = asymmetric();
        let mut x: u64 = 12345;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut late, mut bounces, mut far) = (0, 0, 0);
        for page in 0..512 {
            let (mut r, mut here) = (Record::default(), (next() % 4) as usize);
            for look in 0..60 {
                let nodes = (0..4)
                    .filter(|_| next() % 5 != 0)
                    .fold(0, |s, n| s | (1 << n));
                let placed = at(page, here, false);
                let d = decide(&mut r, seen(nodes, true), placed, &d, false, &mut 8);
                if let Decision::Migrate { to, bounce } = d {
                    here = to;
                    late += usize::from(look >= 20);
                    bounces += usize::from(bounce);
                }
            }
            far += usize::from(here == 0 || here == 3);
        }
        // Judged by the counts alone: 805 late moves, 801 bounces, 54 far.
        assert!(
            late <= 16 && bounces <= 4 && far <= 2,
            "{late} {bounces} {far}"
        );
    }
}
