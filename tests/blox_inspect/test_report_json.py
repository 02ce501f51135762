"""Report JSON: the fast indented writer writes exactly what json.dumps writes."""

import dataclasses
import enum
import json
import os
import random

import pytest

from blox_inspect import load_model, summarize_loaded
from blox_inspect.report._json import dumps, plain

MLP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "mlp.py")


class Level(enum.IntEnum):
    HIGH = 3


EDGE_CASES = [
    {},
    [],
    {"a": [], "b": {}, "c": [[], [{}]]},
    {"floats": [1.5, 1e-300, 1e300, 123456789.125, -0.0, float("nan"), float("inf"), float("-inf")]},
    {"text": 'é\n"\\\u2028 \x00 \U0001f600', "": ""},
    {"tuple": (1, (2, 3))},
    {"flags": [True, False, None], "ints": [0, -3, 10**40]},
    {3: "int key", None: "none key", 2.5: "float key", False: "bool key"},  # json.dumps turns these into strings
    {"enum": Level.HIGH, "nested": {"enum": [Level.HIGH]}},  # an int subclass
]


@pytest.mark.parametrize("data", EDGE_CASES)
@pytest.mark.parametrize("indent", [2, 4, 0, None])
def test_dumps_is_json_dumps(data, indent):
    assert dumps(data, indent=indent) == json.dumps(data, indent=indent)


def test_dumps_is_json_dumps_on_random_nested_data():
    rnd = random.Random(0)
    leaves = [1, -2, 0.5, "ab", None, True, False, "", "ü", 2**70]

    def gen(depth):
        r = rnd.random()
        if depth > 4 or r < 0.3:
            return rnd.choice(leaves)
        if r < 0.65:
            return [gen(depth + 1) for _ in range(rnd.randint(0, 4))]
        return {f"k{i}": gen(depth + 1) for i in range(rnd.randint(0, 4))}

    for _ in range(300):
        data = gen(0)
        assert dumps(data) == json.dumps(data, indent=2)


def test_dumps_raises_what_json_dumps_raises():
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        dumps({"a": [object()]})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        dumps(loop)


def test_a_report_is_dataclasses_asdict_through_json_dumps():
    report = summarize_loaded(load_model(MLP), train=True, xla=False)
    assert plain(report) == dataclasses.asdict(report)
    assert report.to_json() == json.dumps(dataclasses.asdict(report), indent=2)
