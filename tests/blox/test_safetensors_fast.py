"""The fast header readers accept only what the slow ones accept, and read it the same.

Two readers sit behind ``bx.read_header``: msgspec's typed decode with column checks (fast) and
``json`` with one check per tensor (slow, whose messages say what is wrong). For the safetensors
header (``_safetensors._fast_header`` / ``_slow_header``) and for blox's own metadata document
(``_checkpoint_doc.typed_entries``) the property is the same: the fast one gives the slow one's
result or nothing. Plain ``json`` and the official ``safetensors`` library are the references for
what the files hold, and for which headers are malformed.
"""

import json
import struct

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as hs
from safetensors.numpy import save_file

import blox as bx
from blox import _checkpoint_doc as blox_doc
from blox import _safetensors as st

_SETTINGS = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write(path, body: bytes, data: bytes = b""):
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def _both(path):
    """(fast, slow) for one file: fast is a FileHeader or None, slow a FileHeader or its error message."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header, start, size = raw[8 : 8 + n], 8 + n, len(raw)
    fast = st._fast_header(str(path), header, start, size)
    try:
        slow = st._slow_header(str(path), header, start, size)
    except bx.CheckpointError as e:
        slow = str(e)
    return fast, slow


def _reference(path):
    """What plain json reads in the header: metadata and (start, end, name, code, shape) in data order."""
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    meta = header.pop("__metadata__", None) or {}
    rows = sorted((*e["data_offsets"], k, e["dtype"], tuple(e["shape"])) for k, e in header.items())
    return meta, rows


def _rows(h):
    return [(*o, name, code, shape) for name, code, shape, o in zip(h.names, h.codes, h.shapes, h.offsets)]


def _check_fast(path):
    """The fast reader takes the file, agrees with the slow one, json and the official library."""
    fast, slow = _both(path)
    assert fast is not None
    assert fast == slow
    meta, rows = _reference(path)
    assert (fast.metadata, _rows(fast)) == (meta, rows)
    with safetensors.safe_open(str(path), "numpy") as f:
        assert sorted(f.keys()) == sorted(fast.names)
        for name, code, shape in zip(fast.names, fast.codes, fast.shapes):
            s = f.get_slice(name)
            assert (s.get_dtype(), tuple(s.get_shape())) == (code, shape)


# --- files the package writes: the fast reader takes them all --------------------------------

_NAMES = [
    "plain",
    "a.b.c",
    "a/b/c",
    "ünïcödé/名前/😀",
    'quote"in\\name',
    'ends with "},"',
    "tab\tnew\nline\x01",
    "",
    "__metadata",
    " ",
]


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {"step": "7"},
        {"a": 'x"},"y', "b": "{}", "ünï": "😀\n\\", "": ""},
        {"k": '"},"'},
        {"k": 'ends "},', "j": 'also "},'},
        {"k": "ends \\", "j": "\\\\"},
    ],
    ids=["none", "empty", "one", "awkward", "cut-alike", "cut-alike ends", "backslash ends"],
)
def test_files_from_the_package_take_the_fast_path(tmp_path, metadata):
    dtypes = [np.float32, np.int8, ml_dtypes.bfloat16, np.float64, np.bool_, np.uint64, np.complex64]
    shapes = [(2, 3), (), (0,), (3, 0, 2), (1,), (4,), (), (0,), (5, 1), ()]
    tensors = {name: np.zeros(shape, dtypes[i % len(dtypes)]) for i, (name, shape) in enumerate(zip(_NAMES, shapes))}
    f = tmp_path / "m.safetensors"
    save_file(tensors, str(f), metadata=metadata)
    _check_fast(f)


def test_the_fast_path_takes_blox_files(tmp_path):
    params = bx.Params(
        {
            ("net", "w"): bx.Param(jnp.ones((2, 3)), metadata={"sharding": [None, "model"], "deep": {"a": [[1.5]]}}),
            ("net", "b"): bx.Param(jnp.zeros(3, jnp.bfloat16), trainable=False),
            ("net", "empty"): bx.Param(jnp.zeros((0, 4))),
            ("net", "scalar"): bx.Param(jnp.float32(3.0), trainable=False),
            ("a/b", "c.d"): bx.Param(jnp.ones(2)),  # a path that is not its name split on "/"
            ("ünï", "名"): bx.Param(jnp.ones(1)),
            ("rng", "seed"): bx.Param(jax.random.key(1), trainable=False),
            ("__metadata__",): bx.Param(jnp.ones(1)),
        }
    ).locked()
    f = tmp_path / "b.safetensors"
    bx.save(f, params, metadata={"note": 'has "},"'})
    _check_fast(f)
    fast, _ = _both(f)
    assert blox_doc.typed_entries(fast.metadata["blox"], 2) is not None


# --- other writers' layouts: the fast reader takes some, and agrees when it does --------------


def _entries(specs):
    """name -> entry dict, laid out back to back in the given order, and the data length."""
    out, pos = {}, 0
    for name, code, shape in specs:
        size = int(np.prod(shape, dtype=object)) * np.dtype(st.DTYPES[code]).itemsize
        out[name] = {"dtype": code, "shape": list(shape), "data_offsets": [pos, pos + size]}
        pos += size
    return out, pos


_SPECS = [("w", "F32", (2, 3)), ("b", "F16", (3,)), ("z", "I8", (0, 5)), ("s", "F64", ()), ("y", "U8", (0,))]


def _layouts():
    entries, n = _entries(_SPECS)
    meta = {"format": "pt", "x": 'a"},"b'}
    compact = {"separators": (",", ":")}
    yield "spaces, metadata first", {"__metadata__": meta, **entries}, {}, n, False
    yield "compact, metadata last", {**entries, "__metadata__": meta}, compact, n, False
    yield "compact, no metadata", entries, compact, n, True
    yield (
        "ascii escapes",
        {"__metadata__": {"ü": "名"}, "ü/😀": entries["w"]},
        {**compact, "ensure_ascii": True},
        24,
        True,
    )
    yield "metadata null", {"__metadata__": None, **entries}, compact, n, False
    yield "metadata empty", {"__metadata__": {}, **entries}, compact, n, True
    yield "metadata only", {"__metadata__": {"a": "b"}}, compact, 0, False
    yield "nothing", {}, compact, 0, True
    reordered = {
        k: {"data_offsets": e["data_offsets"], "shape": e["shape"], "dtype": e["dtype"]} for k, e in entries.items()
    }
    yield "keys reordered", reordered, compact, n, True
    shuffled = dict(reversed(list(entries.items())))
    yield "data not in header order", {"__metadata__": {"a": "b"}, **shuffled}, compact, n, True
    ties = {k: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for k in ("zz", "aa", "mm")}
    yield "zero-size tensors at one offset", {**ties, "w": {**entries["w"], "data_offsets": [0, 24]}}, compact, 24, True
    extra = {"w": {**entries["w"], "data_offsets": [0, 24], "note": {"x": [1, 2]}}}
    yield "an extra key in an entry", extra, compact, 24, False


@pytest.mark.parametrize("case", [c[0] for c in _layouts()])
def test_other_layouts_agree(tmp_path, case):
    _, header, dump, n, taken = next(c for c in _layouts() if c[0] == case)
    f = _write(tmp_path / "h.safetensors", json.dumps(header, **dump).encode() + b"   ", b"\0" * n)
    fast, slow = _both(f)
    assert not isinstance(slow, str), slow
    assert fast is None or fast == slow
    assert (fast is not None) == taken
    assert (slow.metadata, _rows(slow)) == _reference(f)
    safetensors.safe_open(str(f), "numpy")  # the official library takes each of these too


def test_duplicate_keys_read_as_json_reads_them(tmp_path):
    """json keeps the last of repeated keys, in the first one's place; so does the fast reader, or it declines."""
    e = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    bad = '{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}'
    bodies = [
        '{"a":' + bad + ',"a":' + e + "}",
        '{"a":' + e + ',"b":' + e.replace("0,4", "4,8") + ',"a":' + e.replace("0,4", "8,12") + "}",
        '{"a":{"dtype":"F16","dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        '{"__metadata__":{"k":"1","k":"2"},"a":' + e + "}",
        '{"__metadata__":{"k":"1"},"a":' + e + ',"__metadata__":{"k":"2"}}',
    ]
    for i, body in enumerate(bodies):
        f = _write(tmp_path / f"d{i}.safetensors", body.encode(), b"\0" * 12)
        fast, slow = _both(f)
        assert fast is None or fast == slow, body
        if not isinstance(slow, str):
            assert (slow.metadata, _rows(slow)) == _reference(f)


# --- malformed headers: the fast reader declines, the slow one names the fault ---------------

_E = '"dtype":"F32","shape":[1],"data_offsets":[0,4]'


def _j(*parts):
    """A header from pieces, ``E`` standing for one valid entry's keys (no format strings: JSON is all braces)."""
    return "".join(_E if p == "E" else p for p in parts)


_MALFORMED = {
    "float size": ('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', 4, "has shape [1.0]"),
    "exponent size": ('{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', 4, "has shape [1.0]"),
    "bool size": ('{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}', 4, "has shape [True]"),
    "null size": ('{"a":{"dtype":"F32","shape":[null],"data_offsets":[0,4]}}', 4, "has shape [None]"),
    "negative sizes": ('{"a":{"dtype":"F32","shape":[-1,-1],"data_offsets":[0,4]}}', 4, "has shape [-1, -1]"),
    "overflow under a zero": (
        '{"a":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}',
        0,
        "too large",
    ),
    "overflow": ('{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}}', 0, "too large"),
    "offsets strings": ('{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', 4, "has data_offsets"),
    "offsets three": ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', 4, "has data_offsets"),
    "offsets negative": ('{"a":{"dtype":"F32","shape":[0],"data_offsets":[-4,-4]}}', 0, "has data_offsets"),
    "dtype lower case": ('{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4, "which blox cannot read"),
    "dtype null": ('{"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}', 4, "which blox cannot read"),
    "size mismatch": ('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', 4, "4 bytes stored but shape"),
    "gap": ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8, "belong to no tensor (a gap"),
    "overlap": (_j('{"a":{', "E", '},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}'), 6, "overlap"),
    "trailing bytes": (_j('{"a":{', "E", "}}"), 8, "4 bytes after the last tensor"),
    "truncated": ('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 4, "truncated"),
    "entry missing a key": ('{"a":{"dtype":"F32","shape":[1]}}', 4, "malformed header entry"),
    "entry a string": ('{"a":"F32"}', 0, "malformed header entry"),
    "deep extra key": (_j('{"a":{', "E", ',"x":', "[" * 5000 + "]" * 5000, "}}"), 4, "nested too deeply"),
    "NaN in an extra key": (_j('{"a":{', "E", ',"x":NaN}}'), 4, "NaN is not JSON"),
    "metadata of numbers": (_j('{"__metadata__":{"step":7},"a":{', "E", "}}"), 4, "entry 'step' is int"),
    "metadata a list": (_j('{"__metadata__":["a"],"a":{', "E", "}}"), 4, "__metadata__ is list"),
    "metadata twice": (
        _j('{"__metadata__":{"k":"v"},"a":{', "E", '},"__metadata__":{', "E", "}}"),
        4,
        "__metadata__ entry",
    ),
    "metadata last, nested": (_j('{"a":{', "E", '},"__metadata__":{"k":{"x":"y"}}}'), 4, "entry 'k' is dict"),
    "comma after metadata": ('{"__metadata__":{"k":"v"},}', 0, "not valid JSON"),
    "cut inside metadata": (_j('{"__metadata__":{"k":"v"},"a":{', "E", "},}"), 4, "not valid JSON"),
    "lone surrogate name": (_j('{"\\ud800":{', "E", "}}"), 4, "not valid UTF-8"),
    "lone surrogate metadata": (_j('{"__metadata__":{"k":"\\udfff"},"a":{', "E", "}}"), 4, "not valid UTF-8"),
    "swapped surrogates": (_j('{"\\ude00\\ud83d":{', "E", "}}"), 4, "not valid UTF-8"),
    "not UTF-8": (b'{"\xff":{%s}}' % _E.encode(), 4, "codec can't decode"),
    "control character": (_j('{"a\x01":{', "E", "}}"), 4, "Invalid control character"),
    "trailing garbage": (_j('{"a":{', "E", "}}x"), 4, "Extra data"),
    "a list": ("[]", 0, "not a JSON object"),
    "only spaces": ("   ", 0, "Expecting value"),
}


@pytest.mark.parametrize("case", _MALFORMED)
def test_malformed_headers_keep_the_slow_readers_message(tmp_path, case):
    body, n, part = _MALFORMED[case]
    body = body if isinstance(body, bytes) else body.encode()
    f = _write(tmp_path / "bad.safetensors", body, b"\0" * n)
    fast, slow = _both(f)
    assert fast is None
    assert isinstance(slow, str) and part in slow
    with pytest.raises(bx.CheckpointError) as e:
        bx.read_header(f)
    assert str(e.value) == slow
    if case in _LIBRARY_TAKES:
        safetensors.safe_open(str(f), "numpy")
    else:
        with pytest.raises(safetensors.SafetensorError):  # the official library refuses the others too
            safetensors.safe_open(str(f), "numpy")


# The official library multiplies sizes left to right, so a zero first hides any overflow after it;
# blox refuses a shape whose nonzero sizes overflow, wherever the zero is (as it always has).
_LIBRARY_TAKES = {"overflow under a zero"}


# --- generated headers --------------------------------------------------------------------------

_ITEMSIZE = {k: np.dtype(v).itemsize for k, v in st.DTYPES.items()}
_names = hs.text(hs.characters(codec="utf-8"), max_size=6) | hs.sampled_from(
    ['"},"', "a/b", "a.b", "\\", '"', "__metadata__"]
)
_FAULTS = {  # one fault at most per header; None (most headers) leaves it valid
    "dim": hs.sampled_from([-1, 2**63, 2**64, 1.0, True, None, "2"]),
    "dtype": hs.sampled_from(["X", "f32", None, 4]),
    "metadata value": hs.sampled_from([1, None, ["a"], {"a": "b"}]),
    "extra key": hs.sampled_from([1, [[1]], None, "x"]),
    "offsets": hs.sampled_from([(0, 1), (1, 0), (1, 1), (-1, -1), (0, None)]),
    "data length": hs.sampled_from([1, -1, 4]),
}


@_SETTINGS
@given(
    specs=hs.lists(
        hs.tuples(_names, hs.sampled_from(list(st.DTYPES)), hs.lists(hs.integers(0, 3), max_size=3)), max_size=5
    ),
    metadata=hs.none() | hs.dictionaries(_names, _names, max_size=3),
    meta_first=hs.booleans(),
    compact=hs.booleans(),
    ascii_only=hs.booleans(),
    shuffle=hs.booleans(),
    fault=hs.sampled_from([None] * 6 + list(_FAULTS)),
    data=hs.data(),
)
def test_generated_headers_agree(tmp_path, specs, metadata, meta_first, compact, ascii_only, shuffle, fault, data):
    entries, pos = {}, 0
    for name, code, shape in specs:
        size = int(np.prod(shape)) * _ITEMSIZE[code]
        entries[name] = {"dtype": code, "shape": shape, "data_offsets": [pos, pos + size]}
        pos += size
    items = list(entries.items())
    if shuffle:
        items = data.draw(hs.permutations(items))
    header = dict(items)
    length = pos
    if fault is not None:
        value = data.draw(_FAULTS[fault])
        entry = data.draw(hs.sampled_from(list(header.values()))) if header else None
        if fault == "data length":
            length = max(pos + value, 0)
        elif fault == "metadata value":
            metadata = {**(metadata or {}), "k": value}
        elif entry is not None and fault == "dim":
            entry["shape"] = [*entry["shape"], value]
        elif entry is not None and fault == "dtype":
            entry["dtype"] = value
        elif entry is not None and fault == "extra key":
            entry["x"] = value
        elif entry is not None and fault == "offsets":
            entry["data_offsets"] = [o if d is None else o + d for o, d in zip(entry["data_offsets"], value)]
    if metadata is not None:
        header = {"__metadata__": metadata, **header} if meta_first else {**header, "__metadata__": metadata}
    separators = (",", ":") if compact else (", ", ": ")
    body = json.dumps(header, separators=separators, ensure_ascii=ascii_only).encode()
    f = _write(tmp_path / "gen.safetensors", body, b"\0" * length)
    fast, slow = _both(f)
    event("refused" if isinstance(slow, str) else "read fast" if fast is not None else "read slow")
    assert fast is None or fast == slow
    if not isinstance(slow, str):
        assert (slow.metadata, _rows(slow)) == _reference(f)


# --- blox's own metadata document: typed decode or json, the same header --------------------


def _read_both(path, monkeypatch):
    """read_header's result (or message) with the typed blox-document decode, then with json only."""
    out = []
    for typed in (True, False):
        with monkeypatch.context() as m:
            if not typed:
                m.setattr(blox_doc, "typed_entries", lambda text, version: None)
            try:
                h = bx.read_header(path)
                out.append((h.tensors, h.locked, h.metadata, h.is_blox, h.format_version))
            except bx.CheckpointError as e:
                out.append(str(e))
    return out


def _blox_file(tmp_path, doc, names=("w", "v/u")):
    """Tensors of two uint32 words each: what a threefry PRNG key of shape () stores."""
    entries = {n: {"dtype": "U32", "shape": [2], "data_offsets": [8 * i, 8 * i + 8]} for i, n in enumerate(names)}
    header = {"__metadata__": {"blox": doc if isinstance(doc, str) else json.dumps(doc)}, **entries}
    return _write(
        tmp_path / "b.safetensors", json.dumps(header, separators=(",", ":")).encode(), b"\0" * 8 * len(names)
    )


def test_blox_files_read_the_same_either_way(tmp_path, monkeypatch):
    params = bx.Params(
        {
            ("net", "w"): bx.Param(jnp.ones((2, 3)), metadata={"sharding": [None, "model"], "n": 2**70, "f": 0.1}),
            ("net", "b"): bx.Param(jnp.zeros(3), trainable=False),
            ("a/b", "c"): bx.Param(jnp.ones(2), trainable=False),
            ("rng", "seed"): bx.Param(jax.random.key(1)),
            ("rng", "other"): bx.Param(jax.random.key(2, impl="rbg"), trainable=False, metadata={"k": {}}),
        }
    ).locked()
    f = tmp_path / "m.safetensors"
    bx.save(f, params, metadata={"step": "3"})
    typed, plain = _read_both(f, monkeypatch)
    assert not isinstance(typed, str)
    assert typed == plain
    loaded = bx.load(f)  # and both are what was saved
    assert {p: (v.trainable, v.metadata) for p, v in loaded.items()} == {
        p: (v.trainable, v.metadata) for p, v in params.items()
    }


@pytest.mark.parametrize(
    "tensors, part",
    [
        ({"w": {"trainable": False}, "x": {"trainable": False}}, "lists 1 tensor(s) the file does not hold (e.g. 'x')"),
        ({"w": {}, "x": {}, "y": {"path": ["y"]}}, "lists 2 tensor(s) the file does not hold (e.g. 'x')"),
        ({"w": None}, "tensor 'w' is missing from the blox metadata"),
        ({"x": None}, "lists 1 tensor(s) the file does not hold (e.g. 'x')"),
        ({"w": {"path": ["v", "u"]}}, "tensors 'w' and 'v/u' both map to the path 'v/u'"),
        ({"w": {"path": ["p"]}, "v/u": {"path": ["p"]}}, "both map to the path 'p'"),
        ({"w": {"metadata": None}}, "metadata an object"),
        ({"w": {"trainable": None}}, "trainable must be true/false"),
        ({"w": {"path": []}}, "path must be a non-empty list"),
    ],
)
def test_blox_documents_with_faults_fail_the_same_either_way(tmp_path, monkeypatch, tensors, part):
    f = _blox_file(tmp_path, {"format_version": 2, "locked": False, "tensors": tensors})
    typed, plain = _read_both(f, monkeypatch)
    assert typed == plain
    assert isinstance(plain, str) and part in plain, plain


_meta_value = hs.recursive(
    hs.none() | hs.booleans() | hs.integers(-(2**70), 2**70) | hs.floats(allow_nan=False) | hs.text(max_size=3),
    lambda inner: hs.lists(inner, max_size=2) | hs.dictionaries(hs.text(max_size=2), inner, max_size=2),
    max_leaves=12,
)
_common_entry = hs.sampled_from([{}, {"trainable": False}, {"trainable": True}])
_doc_entry = (
    _common_entry
    | _common_entry
    | hs.fixed_dictionaries(
        {},
        optional={
            "trainable": hs.booleans() | hs.sampled_from([None, 0, "false"]),
            "path": hs.lists(hs.sampled_from(["w", "v", "u", "p"]), min_size=1, max_size=2)
            | hs.sampled_from([None, [], "w", [1]]),
            "metadata": hs.dictionaries(hs.text(max_size=2), _meta_value, max_size=2) | hs.sampled_from([None, []]),
            "key_impl": hs.sampled_from([None, "threefry2x32", "rbg", "nope", 3]),
            "key_shape": hs.sampled_from([[], [1], [-1], None, "x"]),
        },
    )
)
_DOC_FAULTS = {  # one fault at most per document; None (most documents) leaves the rest as drawn
    "version": hs.sampled_from([1, 3, True, 2.0, "2", None]),
    "locked": hs.sampled_from([None, 1, "true"]),
    "entry": hs.sampled_from([None, [], 1, "w", {"other": 1}]),
    "unlisted tensor": hs.just({}),
    "unknown key": hs.just(1),
    "deep metadata": hs.sampled_from([7, 12, 3000]),
}


@_SETTINGS
@given(
    locked=hs.booleans(),
    tensors=hs.dictionaries(hs.sampled_from(["w", "v/u"]), _doc_entry, max_size=2),
    fault=hs.none() | hs.none() | hs.sampled_from(list(_DOC_FAULTS)),
    data=hs.data(),
)
def test_generated_blox_documents_read_the_same_either_way(tmp_path, monkeypatch, locked, tensors, fault, data):
    doc = {"format_version": 2, "locked": locked, "tensors": tensors}
    deep = 0
    if fault is not None:
        value = data.draw(_DOC_FAULTS[fault])
        if fault == "version":
            doc["format_version"] = value
        elif fault == "locked":
            doc["locked"] = value
        elif fault == "entry":
            tensors["w"] = value
        elif fault == "unlisted tensor":
            tensors["x"] = value
        elif fault == "unknown key":
            doc["other"] = value
        else:
            deep = value
    text = json.dumps(doc)
    if deep:  # Param metadata nested `deep` levels deep, in one entry
        tensors["w"] = {"metadata": {}}
        text = json.dumps(doc).replace('"metadata": {}', '"metadata": {"d": ' + "[" * deep + "]" * deep + "}", 1)
    f = _blox_file(tmp_path, text)
    typed, plain = _read_both(f, monkeypatch)
    event("refused" if isinstance(plain, str) else "read")
    event("typed" if blox_doc.typed_entries(text, 2) is not None else "json")
    assert typed == plain
