//! The ruleset a file leaves behind: its commands applied in order, as
//! `nft -f` applies them to an empty ruleset (xgate loads a ruleset whole;
//! there is no running ruleset underneath).
//!
//! `table` blocks and `add`/`create` commands declare or extend tables,
//! chains, sets and objects; `add`/`insert rule` place rules (at the end,
//! the start, or by `index`); `add`/`delete element` change set contents;
//! `flush` and `delete` remove. Rule handles (`handle N`, `replace rule`,
//! `delete rule`) name rules of a running ruleset and are refused.

use super::ast::*;

/// One table after every command.
#[derive(Debug, Clone, PartialEq)]
pub struct TableState {
    pub id: TableId,
    pub loc: Loc,
    /// `flags dormant`: the table does not run.
    pub dormant: bool,
    pub chains: Vec<ChainState>,
    pub sets: Vec<Set>,
    pub objects: Vec<Object>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChainState {
    pub loc: Loc,
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

impl TableState {
    pub fn chain(&self, name: &str) -> Option<&ChainState> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.name == name)
    }
}

/// A problem applying the commands, at `loc`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateError {
    pub loc: Loc,
    pub msg: String,
}

fn err<T>(loc: Loc, msg: impl Into<String>) -> Result<T, StateError> {
    Err(StateError {
        loc,
        msg: msg.into(),
    })
}

fn table_name(id: &TableId) -> String {
    format!("{} {}", id.family.name(), id.name)
}

/// Applies `rs`'s commands in order; the first problem stops, as `nft -f`
/// stops (and loads nothing).
pub fn apply(rs: &Ruleset) -> Result<Vec<TableState>, StateError> {
    let mut tables: Vec<TableState> = Vec::new();
    for cmd in &rs.commands {
        let loc = cmd.loc;
        match &cmd.kind {
            CommandKind::Table { table, create } => {
                let t = match tables.iter().position(|t| t.id == table.id) {
                    Some(_) if *create => {
                        return err(loc, format!("table {} exists", table_name(&table.id)));
                    }
                    Some(i) => &mut tables[i],
                    None => {
                        tables.push(TableState {
                            id: table.id.clone(),
                            loc: table.loc,
                            dormant: false,
                            chains: Vec::new(),
                            sets: Vec::new(),
                            objects: Vec::new(),
                        });
                        tables.last_mut().expect("pushed")
                    }
                };
                t.dormant |= table.flags.iter().any(|f| f == "dormant");
                for s in &table.sets {
                    add_set(t, s)?;
                }
                for o in &table.objects {
                    add_object(t, o)?;
                }
                for c in &table.chains {
                    add_chain(t, c, false)?;
                }
            }
            CommandKind::Chain {
                table,
                chain,
                create,
            } => add_chain(find(&mut tables, table, loc)?, chain, *create)?,
            CommandKind::Rule {
                table,
                chain,
                position,
                rule,
            } => {
                let t = find(&mut tables, table, loc)?;
                let Some(c) = t.chains.iter_mut().find(|c| &c.name == chain) else {
                    return err(
                        loc,
                        format!("no chain {chain} in table {}", table_name(table)),
                    );
                };
                let at = match *position {
                    RulePosition::Append(None) => c.rules.len(),
                    RulePosition::Insert(None) => 0,
                    RulePosition::Append(Some(Anchor::Index(n)))
                    | RulePosition::Insert(Some(Anchor::Index(n))) => {
                        let n = n as usize;
                        if n >= c.rules.len() {
                            return err(
                                loc,
                                format!("chain {chain} has {} rules: no index {n}", c.rules.len()),
                            );
                        }
                        if matches!(position, RulePosition::Append(_)) {
                            n + 1
                        } else {
                            n
                        }
                    }
                    RulePosition::Append(Some(Anchor::Handle(_)))
                    | RulePosition::Insert(Some(Anchor::Handle(_)))
                    | RulePosition::Replace(_) => {
                        return err(
                            loc,
                            "rule handles name rules of a running ruleset; xgate loads the \
                             ruleset whole: write the rules in order, or use `index N`",
                        );
                    }
                };
                c.rules.insert(at, rule.clone());
            }
            CommandKind::Set { table, set } => add_set(find(&mut tables, table, loc)?, set)?,
            CommandKind::Elements {
                table,
                set,
                delete,
                elements,
            } => {
                let t = find(&mut tables, table, loc)?;
                let Some(s) = t.sets.iter_mut().find(|s| &s.name == set) else {
                    return err(loc, format!("no set {set} in table {}", table_name(table)));
                };
                if *delete {
                    for e in elements {
                        let Some(i) = s.elements.iter().position(|x| x.key == e.key) else {
                            return err(e.loc, format!("set {set} has no such element"));
                        };
                        s.elements.remove(i);
                    }
                } else {
                    s.elements.extend(elements.iter().cloned());
                }
            }
            CommandKind::Object { table, object } => {
                add_object(find(&mut tables, table, loc)?, object)?
            }
            CommandKind::Flowtable { table, .. } => {
                find(&mut tables, table, loc)?;
            }
            CommandKind::Flush(f) => match f {
                Flush::Ruleset(fam) => tables.retain(|t| fam.is_some_and(|f| t.id.family != f)),
                Flush::Table(id) => {
                    for c in &mut find(&mut tables, id, loc)?.chains {
                        c.rules.clear();
                    }
                }
                Flush::Chain(id, name) => {
                    let t = find(&mut tables, id, loc)?;
                    match t.chains.iter_mut().find(|c| &c.name == name) {
                        Some(c) => c.rules.clear(),
                        None => return err(loc, format!("no chain {name}")),
                    }
                }
                Flush::Set(id, name) => {
                    let t = find(&mut tables, id, loc)?;
                    match t.sets.iter_mut().find(|s| &s.name == name) {
                        Some(s) => s.elements.clear(),
                        None => return err(loc, format!("no set {name}")),
                    }
                }
            },
            CommandKind::Delete(d) => match d {
                Delete::Table(id) => {
                    let Some(i) = tables.iter().position(|t| &t.id == id) else {
                        return err(loc, format!("no table {}", table_name(id)));
                    };
                    tables.remove(i);
                }
                Delete::Chain(id, name) => {
                    let t = find(&mut tables, id, loc)?;
                    let Some(i) = t.chains.iter().position(|c| &c.name == name) else {
                        return err(loc, format!("no chain {name}"));
                    };
                    if !t.chains[i].rules.is_empty() {
                        return err(loc, format!("chain {name} is not empty"));
                    }
                    t.chains.remove(i);
                }
                Delete::Set(id, name) => {
                    let t = find(&mut tables, id, loc)?;
                    let Some(i) = t.sets.iter().position(|s| &s.name == name) else {
                        return err(loc, format!("no set {name}"));
                    };
                    t.sets.remove(i);
                }
                Delete::Object(id, _, name) => {
                    let t = find(&mut tables, id, loc)?;
                    let Some(i) = t.objects.iter().position(|o| &o.name == name) else {
                        return err(loc, format!("no object {name}"));
                    };
                    t.objects.remove(i);
                }
                Delete::Flowtable(id, _) => {
                    find(&mut tables, id, loc)?;
                }
                Delete::TableHandle(..) | Delete::ChainHandle(..) | Delete::Rule(..) => {
                    return err(
                        loc,
                        "handles name objects of a running ruleset; xgate loads the ruleset \
                         whole: delete by name, or leave the object out",
                    );
                }
            },
            CommandKind::List(_) => {}
        }
    }
    Ok(tables)
}

fn find<'a>(
    tables: &'a mut [TableState],
    id: &TableId,
    loc: Loc,
) -> Result<&'a mut TableState, StateError> {
    match tables.iter_mut().find(|t| &t.id == id) {
        Some(t) => Ok(t),
        None => err(loc, format!("no table {}", table_name(id))),
    }
}

/// Declares `c` or extends the chain of its name (rules appended; a base
/// chain's policy updated, as `nft` does).
fn add_chain(t: &mut TableState, c: &Chain, create: bool) -> Result<(), StateError> {
    match t.chains.iter_mut().find(|x| x.name == c.name) {
        Some(_) if create => err(c.loc, format!("chain {} exists", c.name)),
        Some(x) => {
            match (&mut x.base, &c.base) {
                (Some(old), Some(new)) => {
                    if old.kind != new.kind
                        || old.hook != new.hook
                        || old.priority.value != new.priority.value
                    {
                        return err(
                            new.loc,
                            format!(
                                "chain {} exists with another type, hook or priority",
                                c.name
                            ),
                        );
                    }
                    if new.policy.is_some() {
                        old.policy = new.policy;
                    }
                }
                (None, Some(new)) => {
                    return err(
                        new.loc,
                        format!("chain {} exists as a regular chain", c.name),
                    );
                }
                _ => {}
            }
            x.rules.extend(c.rules.iter().cloned());
            Ok(())
        }
        None => {
            t.chains.push(ChainState {
                loc: c.loc,
                name: c.name.clone(),
                base: c.base.clone(),
                rules: c.rules.clone(),
            });
            Ok(())
        }
    }
}

fn add_set(t: &mut TableState, s: &Set) -> Result<(), StateError> {
    match t.sets.iter_mut().find(|x| x.name == s.name) {
        Some(x) => {
            if x.key != s.key || x.map != s.map {
                return err(s.loc, format!("set {} exists with another type", s.name));
            }
            x.elements.extend(s.elements.iter().cloned());
        }
        None => t.sets.push(s.clone()),
    }
    Ok(())
}

fn add_object(t: &mut TableState, o: &Object) -> Result<(), StateError> {
    if let Some(x) = t.objects.iter_mut().find(|x| x.name == o.name) {
        if x.kind.kind() != o.kind.kind() {
            return err(o.loc, format!("object {} exists as another kind", o.name));
        }
        return Ok(());
    }
    t.objects.push(o.clone());
    Ok(())
}
