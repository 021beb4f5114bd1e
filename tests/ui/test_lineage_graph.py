"""The server-side layered layout of lineage graphs."""

from __future__ import annotations

import pytest

from shipyard.ui.lineage_graph import (
    COLUMN_GAP,
    NODE_HEIGHT,
    NODE_WIDTH,
    GraphEdge,
    GraphNode,
    PlacedNode,
    fit,
    layers,
    layout,
)


def _nodes(*ids: str) -> list[GraphNode]:
    return [GraphNode(id=i, label=i) for i in ids]


def _edges(*pairs: str) -> list[GraphEdge]:
    return [GraphEdge(*p.split(">")) for p in pairs]


def _overlap(a: PlacedNode, b: PlacedNode) -> bool:
    return (
        a.x < b.x + b.width
        and b.x < a.x + a.width
        and a.y < b.y + b.height
        and b.y < a.y + a.height
    )


def test_layers_follow_the_longest_path() -> None:
    # d reads a directly and through b: it goes right of b, so every edge points right.
    nodes = _nodes("a", "b", "c", "d", "lonely")
    edges = _edges("a>b", "b>d", "a>d", "c>d")
    assert layers(nodes, edges) == {"a": 0, "c": 0, "lonely": 0, "b": 1, "d": 2}


def test_lineage_shape_is_drawn_left_to_right_without_overlap() -> None:
    nodes = [
        GraphNode("d1", "customers v3", kind="dataset", href="/d/1"),
        GraphNode("d2", "events v1", kind="dataset"),
        GraphNode("run", "fit", kind="run"),
        GraphNode("m2", "churn v2", kind="model", current=True),
        GraphNode("m1", "churn v1", kind="model"),
    ]
    edges = _edges("d1>run", "d2>run", "run>m2", "run>m1")
    g = layout(nodes, edges)
    at = {p.node.id: p for p in g.nodes}
    assert [at[i].layer for i in ("d1", "d2", "run", "m2", "m1")] == [0, 0, 1, 2, 2]
    assert at["d1"].x < at["run"].x < at["m2"].x
    assert at["run"].x - at["d1"].x == NODE_WIDTH + COLUMN_GAP
    # The single run is centred against the two-node columns.
    assert at["run"].y + NODE_HEIGHT / 2 == pytest.approx(
        (at["d1"].y + at["d2"].y + NODE_HEIGHT) / 2
    )
    assert not any(_overlap(a, b) for a in g.nodes for b in g.nodes if a is not b)
    for p in g.nodes:  # everything inside the drawing
        assert 0 <= p.x and p.x + p.width <= g.width
        assert 0 <= p.y and p.y + p.height <= g.height
    assert at["m2"].node.current and at["d1"].node.href == "/d/1"
    assert at["d1"].title == "dataset: customers v3"


def test_edges_run_from_the_right_side_of_the_source_to_the_left_side_of_the_target() -> None:
    g = layout(_nodes("a", "b"), _edges("a>b"))
    a, b = g.nodes
    (edge,) = g.edges
    assert (edge.source, edge.target) == ("a", "b")
    start, end = edge.d.split(" ")[0], edge.d.split(" ")[-1]
    assert start == f"M{a.x + a.width:g},{a.y + a.height / 2:g}"
    assert end == f"{b.x:g},{b.y + b.height / 2:g}"


def test_order_within_a_column_follows_the_neighbours() -> None:
    # Given in crossing order (x2 before x1), the targets are put level with their sources.
    nodes = _nodes("s1", "s2", "x2", "x1")
    g = layout(nodes, _edges("s1>x1", "s2>x2"))
    at = {p.node.id: p for p in g.nodes}
    assert at["s1"].y < at["s2"].y
    assert at["x1"].y == at["s1"].y and at["x2"].y == at["s2"].y


def test_a_repeated_edge_is_drawn_once() -> None:
    g = layout(_nodes("a", "b"), _edges("a>b", "a>b"))
    assert len(g.edges) == 1


def test_long_labels_are_cut_but_kept_whole_in_the_title() -> None:
    label = "a-very-long-dataset-name-that-does-not-fit v12"
    g = layout([GraphNode("n", label, kind="dataset")], [])
    (p,) = g.nodes
    assert p.text.endswith("…") and len(p.text) < len(label)
    assert label.startswith(p.text[:-1])
    assert p.title == f"dataset: {label}"
    assert fit("short", 100) == "short"


def test_empty_graph_has_no_size() -> None:
    g = layout([], [])
    assert (g.width, g.height, g.nodes, g.edges) == (0, 0, [], [])


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        (_nodes("a", "a"), [], "duplicate node ids"),
        (_nodes("a"), _edges("a>ghost"), "unknown node 'ghost'"),
        (_nodes("a"), _edges("a>a"), "is a loop"),
        (_nodes("a", "b", "c"), _edges("a>b", "b>c", "c>b"), "cycle"),
    ],
)
def test_bad_graphs_are_refused(
    nodes: list[GraphNode], edges: list[GraphEdge], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        layout(nodes, edges)
