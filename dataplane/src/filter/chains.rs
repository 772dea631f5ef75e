//! Chain calls as a graph: loops, call depth and reachability.
//!
//! The one home of these checks: the dataplane's [`super::RulesetBuilder`]
//! and the control plane's iptables parser both build a [`CallGraph`] of
//! their chains and word the errors their own way. Chains are numbered
//! `0..n` by the caller; a [`Call`] is one rule's `-j` (a jump: it pushes
//! a return point) or `-g` (a goto: it does not), kept in rule order so
//! every walk, and so every error, is the same from one run to the next.

/// One rule's call of another chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The called chain.
    pub to: usize,
    /// `-j` (true) or `-g` (false).
    pub jump: bool,
    /// The calling rule's source line.
    pub line: usize,
}

/// The calls of each chain.
#[derive(Clone, Debug, Default)]
pub struct CallGraph {
    calls: Vec<Vec<Call>>,
}

/// A loop of calls, as [`CallGraph::depths`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    /// The calls walked, (calling chain, call), from the chain the walk
    /// started at to the call that reached a chain on the walk again.
    pub path: Vec<(usize, Call)>,
}

impl Loop {
    /// The calls around the loop: the first leaves the chain the walk
    /// reached again, the last enters it.
    pub fn cycle(&self) -> &[(usize, Call)] {
        let again = self.path.last().map_or(0, |(_, c)| c.to);
        let start = self
            .path
            .iter()
            .position(|&(from, _)| from == again)
            .unwrap_or(0);
        &self.path[start..]
    }
}

/// The state of one depth-first walk.
struct Walk {
    /// Deepest jump stack below each chain, once walked.
    depth: Vec<Option<usize>>,
    /// Chains on the current path (a second visit is a loop).
    on_path: Vec<bool>,
    path: Vec<(usize, Call)>,
}

impl CallGraph {
    /// A graph of `chains` chains and no calls.
    pub fn new(chains: usize) -> Self {
        CallGraph {
            calls: vec![Vec::new(); chains],
        }
    }

    /// Adds `call` to the calls of chain `from` (after those added before).
    pub fn add(&mut self, from: usize, call: Call) {
        self.calls[from].push(call);
    }

    /// The deepest stack of jumps below each chain the walk reaches
    /// (gotos push nothing), or the first loop found. The walk is depth
    /// first, from each chain of `starts` in turn, through each chain's
    /// calls in order; chains no start reaches are `None`.
    pub fn depths(
        &self,
        starts: impl IntoIterator<Item = usize>,
    ) -> Result<Vec<Option<usize>>, Loop> {
        let n = self.calls.len();
        let mut w = Walk {
            depth: vec![None; n],
            on_path: vec![false; n],
            path: Vec::new(),
        };
        for s in starts {
            self.walk(s, &mut w)?;
        }
        Ok(w.depth)
    }

    fn walk(&self, i: usize, w: &mut Walk) -> Result<usize, Loop> {
        if let Some(d) = w.depth[i] {
            return Ok(d);
        }
        w.on_path[i] = true;
        let mut d = 0;
        for c in &self.calls[i] {
            w.path.push((i, *c));
            if w.on_path[c.to] {
                return Err(Loop {
                    path: std::mem::take(&mut w.path),
                });
            }
            let below = self.walk(c.to, w)?;
            w.path.pop();
            d = d.max(below + usize::from(c.jump));
        }
        w.on_path[i] = false;
        w.depth[i] = Some(d);
        Ok(d)
    }

    /// Which chains `from` reaches through any number of calls (itself
    /// included).
    pub fn reachable(&self, from: usize) -> Vec<bool> {
        let mut seen = vec![false; self.calls.len()];
        let mut stack = vec![from];
        while let Some(c) = stack.pop() {
            if std::mem::replace(&mut seen[c], true) {
                continue;
            }
            stack.extend(self.calls[c].iter().map(|x| x.to));
        }
        seen
    }

    /// On the deepest path of calls from `from` (`depth` from
    /// [`Self::depths`]), the first call that takes the jump stack past
    /// `max`; `None` if the path ends first.
    pub fn first_call_past(
        &self,
        from: usize,
        depth: &[Option<usize>],
        max: usize,
    ) -> Option<Call> {
        let mut chain = from;
        let mut pushed = 0;
        loop {
            let c = self.calls[chain]
                .iter()
                .max_by_key(|c| depth[c.to].unwrap_or(0) + usize::from(c.jump))?;
            pushed += usize::from(c.jump);
            if pushed > max {
                return Some(*c);
            }
            chain = c.to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(to: usize, jump: bool, line: usize) -> Call {
        Call { to, jump, line }
    }

    #[test]
    fn depths_count_jumps_not_gotos() {
        let mut g = CallGraph::new(4);
        g.add(0, call(1, true, 1));
        g.add(1, call(2, false, 2));
        g.add(2, call(3, true, 3));
        assert_eq!(
            g.depths(0..4).unwrap(),
            vec![Some(2), Some(1), Some(1), Some(0)]
        );
        assert_eq!(
            g.depths([1]).unwrap(),
            vec![None, Some(1), Some(1), Some(0)]
        );
        let d = g.depths(0..4).unwrap();
        assert_eq!(g.first_call_past(0, &d, 1), Some(call(3, true, 3)));
        assert_eq!(g.first_call_past(0, &d, 2), None);
    }

    #[test]
    fn a_loop_is_the_path_that_closes_it() {
        let mut g = CallGraph::new(4);
        g.add(0, call(1, true, 10));
        g.add(1, call(2, true, 11));
        g.add(2, call(3, false, 12));
        g.add(3, call(1, true, 13));
        let l = g.depths(0..4).unwrap_err();
        assert_eq!(l.path.len(), 4);
        let cycle: Vec<_> = l.cycle().iter().map(|(from, c)| (*from, c.to)).collect();
        assert_eq!(cycle, vec![(1, 2), (2, 3), (3, 1)]);
        let mut g = CallGraph::new(1);
        g.add(0, call(0, false, 5));
        assert_eq!(
            g.depths([0]).unwrap_err().cycle(),
            &[(0, call(0, false, 5))]
        );
    }

    #[test]
    fn reachable_follows_calls() {
        let mut g = CallGraph::new(4);
        g.add(0, call(1, true, 1));
        g.add(1, call(2, false, 2));
        assert_eq!(g.reachable(0), vec![true, true, true, false]);
        assert_eq!(g.reachable(3), vec![false, false, false, true]);
    }
}
