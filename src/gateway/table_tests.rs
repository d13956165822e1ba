//! The transition-table scaffolding shared by the client and server session tests: a row (a
//! prelude of inputs, one input at one time, the actions it must produce and the state after)
//! and the runner that checks every row on a fresh session.
use std::fmt::Debug;

/// One transition: after `prelude`, `input` at `at` produces `expect` and leaves `state`.
/// `start` is what the machine starts from (the client: a saved session to resume).
pub(crate) struct Row<At, In, State, Start = ()> {
    pub name: &'static str,
    pub start: Start,
    pub prelude: Vec<(At, In)>,
    pub at: At,
    pub input: In,
    pub expect: Vec<&'static str>,
    pub state: State,
}

/// A row starting from the default start.
pub(crate) fn row<At, In, State, Start: Default>(
    name: &'static str,
    prelude: Vec<(At, In)>,
    at: At,
    input: In,
    expect: &[&'static str],
    state: State,
) -> Row<At, In, State, Start> {
    Row {
        name,
        start: Start::default(),
        prelude,
        at,
        input,
        expect: expect.to_vec(),
        state,
    }
}

/// Runs every row on a machine made by `new` from the row's start, feeding inputs with `apply`
/// (which describes the actions) and reading the state with `state`; fails listing every row
/// whose actions or state differ.
pub(crate) fn check_rows<M, At: Copy, In, State: PartialEq + Debug, Start>(
    rows: Vec<Row<At, In, State, Start>>,
    new: impl Fn(&Start) -> M,
    apply: impl Fn(&mut M, At, &In) -> Vec<String>,
    state: impl Fn(&M) -> State,
) {
    let mut failures = Vec::new();
    for row in rows {
        let mut machine = new(&row.start);
        for (at, input) in &row.prelude {
            apply(&mut machine, *at, input);
        }
        let got = apply(&mut machine, row.at, &row.input);
        let now = state(&machine);
        if got != row.expect || now != row.state {
            failures.push(format!(
                "{}: expected {:?} in {:?}, got {:?} in {:?}",
                row.name, row.expect, row.state, got, now
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
