"""Random sequences of Params operations, checked against a plain dict of what each Params should hold.

Every operation starts from any earlier version (not only the newest), so sharing between versions
is exercised: a version must never change after it was made. The reference is a dict from path to
(value, trainable, metadata) plus a lock flag, updated by hand-written rules, never by Params itself.
"""

import jax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blox as bx
from blox import _params

NAMES = st.sampled_from(["a", "b", "c", "", "a/b", "\\"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map(tuple)
VALUES = st.integers(-5, 5).map(float)
PREFIXES = st.lists(NAMES, max_size=2).map(tuple)
AT = st.integers(0, 10**6)  # index of the version an operation starts from (taken modulo the count)

OPS = st.one_of(
    st.tuples(st.just("set"), AT, PATHS, VALUES, st.booleans()),
    st.tuples(st.just("reset"), AT, AT, VALUES),
    st.tuples(st.just("bulk"), AT, st.integers(1, 200)),
    st.tuples(st.just("split"), AT, st.sampled_from(["trainable", "first is a"])),
    st.tuples(st.just("merge"), AT, AT),
    st.tuples(st.just("subtree"), AT, PREFIXES),
    st.tuples(st.just("locked"), AT),
    st.tuples(st.just("unlocked"), AT),
    st.tuples(st.just("map"), AT),
    st.tuples(st.just("unflatten"), AT),
)


def _pred(kind):
    if kind == "trainable":
        return lambda path, p: p.trainable
    return lambda path, p: path[0] == "a"


def _apply(op, versions):
    """Runs one op on Params and on the reference; returns the new (params, reference) pairs."""
    name, at = op[0], op[1] % len(versions)
    params, (ref, locked) = versions[at]
    if name == "set":
        _, _, path, value, trainable = op
        meta = {"v": value}
        return [(params.set(path, bx.Param(value, trainable, meta)), ({**ref, path: (value, trainable, meta)}, locked))]
    if name == "reset":  # a new value for a path already held (or a new path when there is none)
        path = sorted(ref)[op[2] % len(ref)] if ref else ("a",)
        return [(params.set(path, bx.Param(op[3])), ({**ref, path: (op[3], True, {})}, locked))]
    if name == "bulk":
        # Many new paths in a row, each followed by a new value of one counter path (as an Rng does
        # during init): fills and folds the levels of the store while a path in them keeps changing.
        new, ref = params, dict(ref)
        for i in range(op[2]):
            path = ("bulk", f"{len(ref)}", str(i))
            new = new.set(path, bx.Param(float(i))).set(("bulk", "counter"), bx.Param(float(i), False))
            ref[path] = (float(i), True, {})
            ref["bulk", "counter"] = (float(i), False, {})
        return [(new, (ref, locked))]
    if name == "split":
        yes, no = params.split(_pred(op[2]))
        want = {k: v for k, v in ref.items() if (v[1] if op[2] == "trainable" else k[0] == "a")}
        return [(yes, (want, locked)), (no, ({k: v for k, v in ref.items() if k not in want}, locked))]
    if name == "merge":
        other, (oref, olocked) = versions[op[2] % len(versions)]
        if olocked != locked or ref.keys() & oref.keys():
            with pytest.raises(bx.ParamError, match="different lock states|both hold"):
                params.merge(other)
            return []
        return [(params.merge(other), ({**ref, **oref}, locked))]
    if name == "subtree":
        n = len(op[2])
        return [(params.subtree(op[2]), ({k: v for k, v in ref.items() if k[:n] == op[2]}, locked))]
    if name == "locked":
        return [(params.locked(), (ref, True))]
    if name == "unlocked":
        return [(params.unlocked(), (ref, False))]
    if name == "map":
        return [
            (
                params.map(lambda path, p: p.value * 2 + len(path)),
                ({k: (v[0] * 2 + len(k), *v[1:]) for k, v in ref.items()}, locked),
            )
        ]
    leaves, treedef = jax.tree.flatten(params)
    assert leaves == [ref[k][0] for k in sorted(ref)]
    return [
        (
            jax.tree.unflatten(treedef, [x + 1 for x in leaves]),
            ({k: (v[0] + 1, *v[1:]) for k, v in ref.items()}, locked),
        )
    ]


def _check(params, ref, locked):
    keys = sorted(ref)
    assert list(params) == keys and len(params) == len(ref) and params.is_locked == locked
    for path, (value, trainable, meta) in ref.items():
        got = params[path]
        assert path in params and bx.path_str(path) in params
        assert (got.value, got.trainable, got.metadata) == (value, trainable, meta)
    assert ("missing",) not in params and params.get(("missing",)) is None
    assert jax.tree.leaves(params) == [ref[k][0] for k in keys]
    # Equal contents make equal tree structures, however each version was built.
    same = bx.Params({k: bx.Param(v, t, m) for k, (v, t, m) in ref.items()}, locked=locked)
    assert jax.tree.structure(params) == jax.tree.structure(same)


def _run(ops):
    versions = [(bx.Params(), ({}, False))]
    for op in ops:
        versions.extend(_apply(op, versions))
        _check(versions[-1][0], *versions[-1][1])
    for params, (ref, locked) in versions:  # nothing made later changed an earlier version
        _check(params, ref, locked)


@settings(max_examples=120, derandomize=True, deadline=None, database=None)
@given(st.lists(OPS, max_size=40))
def test_params_operations_match_a_plain_dict(ops):
    _run(ops)


@settings(max_examples=60, derandomize=True, deadline=None, database=None)
@given(st.lists(OPS, max_size=40))
def test_params_operations_match_a_plain_dict_with_tiny_levels(ops):
    # Tiny levels make every few sets fold the store, so the folding paths run often.
    top, fanout = _params._TOP, _params._FANOUT
    _params._TOP, _params._FANOUT = 2, 2
    try:
        _run(ops)
    finally:
        _params._TOP, _params._FANOUT = top, fanout
