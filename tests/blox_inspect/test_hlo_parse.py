from blox_inspect.analysis.hlo_parse import computation_repeats, find_collectives, find_loops, shape_bytes

# A trimmed optimized-HLO module: an all-reduce at the top level, and an all-gather inside a loop body
# that XLA knows runs 10 times, itself inside a loop of 4.
HLO = """\
HloModule jit_f, is_scheduled=true

%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(%a, %b)
}

%inner_body (p: (s32[], bf16[8,4])) -> (s32[], bf16[8,4]) {
  %p = (s32[], bf16[8,4]{1,0}) parameter(0)
  %x = bf16[8,4]{1,0} get-tuple-element(%p), index=1
  %ag = bf16[64,4]{1,0} all-gather(%x), channel_id=1, dimensions={0}, metadata={op_name="jit(f)/net/l1/dot_general"}
  ROOT %t = (s32[], bf16[8,4]{1,0}) tuple(%i, %x)
}

%inner_cond (p: (s32[], bf16[8,4])) -> pred[] {
  %p = (s32[], bf16[8,4]{1,0}) parameter(0)
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}

%outer_body (p: (s32[], bf16[8,4])) -> (s32[], bf16[8,4]) {
  %p = (s32[], bf16[8,4]{1,0}) parameter(0)
  ROOT %w = (s32[], bf16[8,4]{1,0}) while(%p), condition=%inner_cond, body=%inner_body, backend_config={"known_trip_count":{"n":"10"}}
}

ENTRY %main (a: f32[16,2]) -> f32[16,2] {
  %a = f32[16,2]{1,0} parameter(0)
  %ar = f32[16,2]{1,0} all-reduce(%a), channel_id=2, to_apply=%add, metadata={op_name="jit(f)/transpose(jvp(net/l2))/net/l2/dot_general"}
  %w = (s32[], bf16[8,4]{1,0}) while(%t0), condition=%inner_cond, body=%outer_body, metadata={op_name="jit(f)/while"}, backend_config={"known_trip_count":{"n":"4"}}
  %ags = (f32[2,2]{1,0}, f32[16,2]{1,0}) all-gather-start(%a), dimensions={0}
  %agd = f32[16,2]{1,0} all-gather-done(%ags)
  ROOT %r = f32[16,2]{1,0} add(%ar, %agd)
}
"""


def test_shape_bytes():
    assert shape_bytes("bf16[64,4]{1,0}") == 512
    assert shape_bytes("(s32[], f32[2,3]{1,0}, pred[4])") == 4 + 24 + 4
    assert shape_bytes("f4e2m1fn[3]") == 2  # 12 bits round up to whole bytes


def test_loop_trip_counts_and_repeats():
    assert [(lp.trip_count, lp.body) for lp in find_loops(HLO)] == [(10, "inner_body"), (4, "outer_body")]
    repeats = computation_repeats(HLO)
    assert repeats["main"] == 1 and repeats["outer_body"] == 4 and repeats["inner_body"] == 40


def test_collectives_with_sizes_repeats_and_async_pairs_once():
    found = {(c.kind, c.computation): c for c in find_collectives(HLO)}
    assert set(found) == {("all-gather", "inner_body"), ("all-reduce", "main"), ("all-gather", "main")}
    inner = found[("all-gather", "inner_body")]
    assert (inner.bytes, inner.repeats, inner.op_name) == (64 * 4 * 2, 40, "jit(f)/net/l1/dot_general")
    assert found[("all-reduce", "main")].bytes == 16 * 2 * 4 and found[("all-reduce", "main")].repeats == 1
    assert found[("all-gather", "main")].bytes == 16 * 2 * 4  # -start: the larger (gathered) buffer
