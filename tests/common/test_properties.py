"""Properties, checked by hypothesis on generated data: Tukey selection and ranking are invariant to permuting the
inputs, to scaling ω by a positive factor and to adding a constant to a row; they never select more than
``branching`` children nor count more outliers than inputs; graph files give back every graph the schema allows.

Hypothesis runs derandomised (the same examples on every run, no example database), so that a failure in CI is
reproduced by running the module again.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stepwise import DependencyGraph, read_graph, write_graph
from stepwise.graphs import readwrite
from stepwise.graphs.readwrite.codec import RESERVED as FORMAT_FIELDS
from stepwise.ssa.select import SIGNS, outlier_mask, select_children

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")  # pydot's use of old pyparsing names

PROFILE = settings(max_examples=100, deadline=None, derandomize=True, database=None)

# ------------------------------------------------------------------------------------------------ selection

# Exact arithmetic, on purpose. The quartiles are numpy's, bit for bit: Q = a + (b - a) * gamma with gamma in
# {0, 1/4, 1/2, 3/4}, and the fence Q3 + fence * (Q3 - Q1). For ω values and shifts that are multiples of 1/16 of
# magnitude at most 64 (dyadic rationals with a dozen significant bits), fences 0.5, 1, 1.5, 3 and scales that are
# powers of two, every one of these operations and every sum over inputs is exact in float64, and the mean over
# inputs keeps the order of the sums. The properties then hold exactly, as they do for real numbers. With arbitrary
# floats, adding c or scaling by s rounds differently, and a value lying on a fence can move across it: the
# property is true of the maths but not of the floats, and weaker assertions would hide real errors.
DYADIC = 16
omega_values = st.integers(-64 * DYADIC, 64 * DYADIC).map(lambda n: n / DYADIC)
FENCES = st.sampled_from([0.5, 1.0, 1.5, 3.0])


@st.composite
def omegas(draw: st.DrawFn) -> np.ndarray:
    """ω of shape (n_upper, n_inputs, n_lower) in multiples of 1/16 up to 64, with heavy tails (a few large
    values) so that outliers occur."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 12)))
    base = draw(hnp.arrays(np.int64, shape, elements=st.integers(-16, 16)))
    tails = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from([0, 0, 0, 1, 64, -64, 1008])))
    return (base + tails).astype(np.float64) / DYADIC


def rank(omega: np.ndarray, *, fence: float, sign: str, branching: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Outlier mask, counts and children of a step as the traversal computes them from ω (n_upper, n_inputs, K)."""
    values = torch.from_numpy(omega)
    mask = outlier_mask(values, fence=fence, sign=sign)
    counts = mask.sum(dim=1).numpy()
    mean = (values.sum(dim=1, dtype=torch.float64) / omega.shape[1]).numpy()
    children = select_children(counts, mean, branching=branching, sign=sign)
    return mask.numpy(), counts, [c.tolist() for c in children]


selection = dict(omega=omegas(), fence=FENCES, sign=st.sampled_from(SIGNS), branching=st.integers(1, 5))


@PROFILE
@given(**selection, data=st.data())
def test_permuting_the_inputs_changes_nothing(omega, fence, sign, branching, data):
    order = data.draw(st.permutations(range(omega.shape[1])))
    mask, counts, children = rank(omega, fence=fence, sign=sign, branching=branching)
    permuted_mask, permuted_counts, permuted_children = rank(
        omega[:, order], fence=fence, sign=sign, branching=branching
    )
    np.testing.assert_array_equal(permuted_mask, mask[:, order])
    np.testing.assert_array_equal(permuted_counts, counts)
    assert permuted_children == children


@PROFILE
@given(**selection, data=st.data())
def test_permuting_the_lower_neurons_permutes_the_outliers(omega, fence, sign, branching, data):
    order = data.draw(st.permutations(range(omega.shape[2])))
    mask, counts, _ = rank(omega, fence=fence, sign=sign, branching=branching)
    permuted_mask, permuted_counts, _ = rank(omega[:, :, order], fence=fence, sign=sign, branching=branching)
    np.testing.assert_array_equal(permuted_mask, mask[:, :, order])
    np.testing.assert_array_equal(permuted_counts, counts[:, order])


@PROFILE
@given(**selection, exponent=st.integers(-8, 8))
def test_scaling_omega_by_a_positive_factor_changes_nothing(omega, fence, sign, branching, exponent):
    expected = rank(omega, fence=fence, sign=sign, branching=branching)
    mask, counts, children = rank(omega * 2.0**exponent, fence=fence, sign=sign, branching=branching)
    np.testing.assert_array_equal(mask, expected[0])
    np.testing.assert_array_equal(counts, expected[1])
    assert children == expected[2]


@PROFILE
@given(**selection, data=st.data())
def test_adding_a_constant_to_a_row_changes_nothing(omega, fence, sign, branching, data):
    shift = data.draw(hnp.arrays(np.float64, omega.shape[:2], elements=omega_values))
    mask, counts, children = rank(omega, fence=fence, sign=sign, branching=branching)
    shifted_mask, shifted_counts, shifted_children = rank(
        omega + shift[:, :, None], fence=fence, sign=sign, branching=branching
    )
    np.testing.assert_array_equal(shifted_mask, mask)
    np.testing.assert_array_equal(shifted_counts, counts)
    if sign == "both":  # ties in count go to the larger |mean ω|, which a shift changes; the counts chosen do not
        for row, (before, after) in enumerate(zip(children, shifted_children)):
            assert sorted(counts[row, after]) == sorted(counts[row, before])
    else:  # a shift moves the mean ω of every lower neuron of a row alike: the order is kept
        assert shifted_children == children


@PROFILE
@given(**selection)
def test_counts_and_children_stay_within_bounds(omega, fence, sign, branching):
    mask, counts, children = rank(omega, fence=fence, sign=sign, branching=branching)
    n_upper, n_inputs, n_lower = omega.shape
    assert counts.shape == (n_upper, n_lower)
    assert ((0 <= counts) & (counts <= n_inputs)).all()
    assert len(children) == n_upper
    for row, chosen in enumerate(children):
        assert len(chosen) <= branching and len(set(chosen)) == len(chosen)
        assert all(counts[row, k] > 0 for k in chosen)
        assert list(counts[row, chosen]) == sorted(counts[row, chosen], reverse=True)
        unchosen = [k for k in range(n_lower) if k not in chosen]
        if len(chosen) < branching:  # every neuron with an outlier was taken
            assert all(counts[row, k] == 0 for k in unchosen)
        elif chosen:  # no neuron left out has a higher count than a chosen one
            assert all(counts[row, k] <= counts[row, chosen[-1]] for k in unchosen)


@PROFILE
@given(
    counts=hnp.arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 15)), elements=st.integers(0, 9)),
    branching=st.integers(1, 20),
    sign=st.sampled_from(SIGNS),
    data=st.data(),
)
def test_children_are_at_most_branching_neurons_that_have_outliers(counts, branching, sign, data):
    mean = data.draw(hnp.arrays(np.float64, counts.shape, elements=st.floats(-1e6, 1e6)))
    for row, chosen in enumerate(select_children(counts, mean, branching=branching, sign=sign)):
        assert len(chosen) == min(branching, int((counts[row] > 0).sum()))
        assert (counts[row, chosen] > 0).all()


# ---------------------------------------------------------------------------------------------- graph files

# Names a writer stores as its own fields (GEXF's node 'label', JSON's edge 'source', ...), or that the schema
# types: extra attributes are drawn among the others.
RESERVED = {name for fmt in FORMAT_FIELDS.values() for names in fmt.values() for name in names}
SCHEMA = {"levels", "kind", "target", "level", "index", "depth", "count", "frequency", "relevance", "sign"}
SCHEMA |= {"model", "rule", "version", "stopped_at", "stop_reason", "branching", "n_inputs", "fence"}

text = st.text(max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(2**100), 2**100) | st.floats(allow_nan=False) | text
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6
)
# Node keys and attribute names are stored as they are, so without the control characters XML cannot hold (the
# XML writers refuse them); values are any text.
xml_text = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Cn"])
names = st.text(xml_text, min_size=1, max_size=10).filter(lambda name: name not in RESERVED | SCHEMA)
extras = st.dictionaries(names, values, max_size=3)
levels = st.text(xml_text, min_size=1, max_size=8)


@st.composite
def dependency_graphs(draw: st.DrawFn) -> DependencyGraph:
    """A small graph that follows the schema, with extra attributes of every kind on the graph, nodes and edges."""
    level_names = draw(st.lists(levels, min_size=1, max_size=4, unique=True))
    top = len(level_names) - 1
    g = nx.DiGraph(levels=level_names)
    for position, level in enumerate(level_names):
        for index in draw(st.sets(st.integers(0, 2**31), max_size=3)):
            g.add_node(f"{level}:{index}", level=level, index=index, depth=top - position, **draw(extras))
    nodes = list(g.nodes)
    for u in nodes:
        lower = [v for v in nodes if g.nodes[v]["depth"] > g.nodes[u]["depth"]]
        for v in draw(st.lists(st.sampled_from(lower), max_size=3, unique=True)) if lower else []:
            count = draw(st.integers(1, 10**6))
            relevance = draw(finite)
            g.add_edge(
                u,
                v,
                count=count,
                frequency=count / draw(st.integers(count, 10**6)),
                relevance=relevance,
                sign=1 if relevance > 0 or (relevance == 0 and draw(st.booleans())) else -1,
                **draw(extras),
            )
    pairs = st.lists(st.tuples(st.sampled_from(level_names), st.integers(0, 99)).map(list), min_size=1, max_size=3)
    g.graph["target"] = draw(st.integers(0, 999) | pairs)
    recorded = st.fixed_dictionaries(
        {},
        optional={
            "model": text,
            "rule": text,
            "version": text,
            "branching": st.integers(1, 10),
            "n_inputs": st.integers(1, 10**6),
            "fence": st.floats(0.0, 10.0, exclude_min=True),
        },
    )
    g.graph.update(draw(recorded), **draw(extras))
    return DependencyGraph(g)


def typed(value: object) -> object:
    """A value with the type of every part spelled out, and floats by their bits: 1 == 1.0 == True, and
    0.0 == -0.0, but their typed forms differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float):
        return ("float", value.hex(), math.copysign(1.0, value))
    return (type(value).__name__, value)


def as_typed(graph: DependencyGraph) -> tuple[object, object, object]:
    g = graph.to_networkx()
    return (
        typed(g.graph),
        {n: typed(d) for n, d in g.nodes(data=True)},
        {(u, v): typed(d) for u, v, d in g.edges(data=True)},
    )


@pytest.mark.parametrize("suffix", readwrite.FORMATS)
def test_every_graph_the_schema_allows_reads_back_as_written(suffix):
    if suffix == ".dot":
        pytest.importorskip("pydot")

    @settings(PROFILE, max_examples=30, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(graph=dependency_graphs())
    def round_trip(graph: DependencyGraph) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"graph{suffix}"
            write_graph(graph, path)
            read = read_graph(path)
        assert as_typed(read) == as_typed(graph)
        assert read == graph

    round_trip()
