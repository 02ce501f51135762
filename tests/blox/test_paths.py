import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blox as bx

# Names built from the characters that matter to the escaping, plus arbitrary text.
NAMES = st.one_of(st.text(alphabet="\\/.a", max_size=4), st.text(max_size=6))
PATHS = st.lists(NAMES, max_size=5).map(tuple)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(PATHS, PATHS)
def test_every_tuple_of_strings_round_trips_and_has_its_own_string(a, b):
    assert bx.parse_path(bx.path_str(a)) == a
    # The plain join path_str takes when no name needs escaping gives the escaped spelling.
    escaped = "/".join(n.replace("\\", "\\\\").replace("/", "\\/") for n in a)
    assert bx.path_str(a) == ("\\." if a == ("",) else escaped)
    # Round-tripping makes path_str injective: two paths share a string only if they are equal.
    assert (bx.path_str(a) == bx.path_str(b)) == (a == b)


def test_the_empty_path_and_the_empty_name_are_distinct():
    # Both used to be spelled '' and parse back as ('',).
    assert bx.path_str(()) == "" and bx.parse_path("") == ()
    assert bx.path_str(("",)) == "\\." and bx.parse_path("\\.") == ("",)
    assert bx.parse_path(bx.path_str(("",))) == ("",) and bx.parse_path(bx.path_str(())) == ()
    assert bx.path_str(("", "")) == "/" and bx.parse_path("/") == ("", "")


@pytest.mark.parametrize(
    "path", [("a\\.",), ("\\",), ("a", ""), ("", "a"), ("\\.", ""), (".",), ("/",), ("\\/",), ("", "", "")]
)
def test_escapes_next_to_empty_names(path):
    assert bx.parse_path(bx.path_str(path)) == path


def test_params_keys_use_the_same_rule():
    params = bx.Params({(): bx.Param(1.0), ("",): bx.Param(2.0)})
    assert params[""].value == 1.0 and params["\\."].value == 2.0
    assert list(params) == [(), ("",)]
