"""A small lineage graph laid out on the server: nodes and edges in, positioned boxes out.

Pages draw lineage (dataset versions -> run -> model versions, and later pipelines and
deployments) as an SVG without a script: this module places the nodes in layers, left
to right, and computes each edge's path; a template draws the result. The layout is
the classic layered one, kept simple because lineage graphs here are small:

1. each node's layer is the length of the longest path reaching it (sources at 0),
   so every edge points right;
2. within a layer, nodes are ordered by the mean position of their neighbours in the
   previous layer, then in the next (one sweep each way), which removes most crossings
   in graphs of this size;
3. layers become columns, their nodes stacked and centred vertically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NODE_WIDTH = 190
NODE_HEIGHT = 46
COLUMN_GAP = 64
ROW_GAP = 18
MARGIN = 8
PADDING = 10
# Roughly the advance of one character at the 12px UI font; labels longer than a box
# holds are cut with an ellipsis (the full text stays in the node's tooltip).
CHAR_WIDTH = 7.0


@dataclass(frozen=True)
class GraphNode:
    """A node to draw: ``id`` unique in the graph; ``kind`` a CSS-safe word (dataset,
    run, model...) shown above ``label``; ``href`` where a click goes."""

    id: str
    label: str
    kind: str = ""
    href: str | None = None
    current: bool = False


@dataclass(frozen=True)
class GraphEdge:
    """An edge from ``source`` to ``target`` (node ids): the target came from the source."""

    source: str
    target: str


@dataclass(frozen=True)
class PlacedNode:
    """A node with its box (top-left ``x``, ``y``) and the label cut to fit the box."""

    node: GraphNode
    layer: int
    x: float
    y: float
    width: float
    height: float
    text: str

    @property
    def title(self) -> str:
        """The tooltip: kind and full label."""
        return f"{self.node.kind}: {self.node.label}" if self.node.kind else self.node.label


@dataclass(frozen=True)
class PlacedEdge:
    """An edge with its SVG path: a curve from the source's right side to the target's left."""

    source: str
    target: str
    d: str


@dataclass(frozen=True)
class Layout:
    """Everything a template needs to draw the graph in a ``width`` x ``height`` box."""

    width: float
    height: float
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]


def fit(text: str, width: float) -> str:
    """``text`` cut with an ellipsis to about ``width`` pixels."""
    room = max(1, int(width / CHAR_WIDTH))
    return text if len(text) <= room else text[: room - 1] + "…"


def _check(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> None:
    ids = [n.id for n in nodes]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate node ids: {dupes}")
    known = set(ids)
    for e in edges:
        for end in (e.source, e.target):
            if end not in known:
                raise ValueError(f"edge {e.source!r} -> {e.target!r} names unknown node {end!r}")
        if e.source == e.target:
            raise ValueError(f"edge {e.source!r} -> {e.target!r} is a loop")


def layers(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> dict[str, int]:
    """Each node's layer: the longest path from a source to it. ValueError on a cycle."""
    _check(nodes, edges)
    preds: dict[str, list[str]] = {n.id: [] for n in nodes}
    succs: dict[str, list[str]] = {n.id: [] for n in nodes}
    for e in dict.fromkeys(edges):  # a repeated edge counts once
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)
    waiting = {n: len(p) for n, p in preds.items()}
    ready = [n.id for n in nodes if waiting[n.id] == 0]
    layer = dict.fromkeys(ready, 0)
    done = 0
    while ready:
        current = ready.pop()
        done += 1
        for nxt in succs[current]:
            layer[nxt] = max(layer.get(nxt, 0), layer[current] + 1)
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    if done != len(nodes):
        stuck = sorted(n for n, w in waiting.items() if w > 0)
        raise ValueError(f"the graph has a cycle through {stuck}")
    return layer


def _barycentre(node: str, index: int, neighbours: list[str], rows: dict[str, int]) -> float:
    """The mean row of ``neighbours`` in the adjacent column; none there: the node's own row."""
    found = [rows[m] for m in neighbours if m in rows]
    return sum(found) / len(found) if found else float(index)


def _order(columns: list[list[str]], edges: Sequence[GraphEdge]) -> list[list[str]]:
    """Reorder each column by the mean row of its neighbours in the column to its left
    (one sweep rightwards), then to its right (one sweep back)."""
    near: dict[tuple[str, int], list[str]] = {}
    for e in edges:
        near.setdefault((e.target, -1), []).append(e.source)
        near.setdefault((e.source, +1), []).append(e.target)
    last = len(columns) - 1
    for i, side in [(i, -1) for i in range(1, last + 1)] + [
        (i, +1) for i in range(last - 1, -1, -1)
    ]:
        rows = {n: r for r, n in enumerate(columns[i + side])}
        keyed = [
            (_barycentre(n, r, near.get((n, side), []), rows), r, n)
            for r, n in enumerate(columns[i])
        ]
        columns[i] = [n for _, _, n in sorted(keyed)]
    return columns


def layout(
    nodes: Sequence[GraphNode],
    edges: Sequence[GraphEdge],
    *,
    node_width: float = NODE_WIDTH,
    node_height: float = NODE_HEIGHT,
) -> Layout:
    """Place ``nodes`` in layers, left to right, and route ``edges`` between them.

    ValueError for duplicate node ids, an edge naming an unknown node, a loop or a cycle.
    """
    layer = layers(nodes, edges)
    count = max(layer.values(), default=-1) + 1
    columns: list[list[str]] = [[] for _ in range(count)]
    for n in nodes:  # input order is the starting order within a column
        columns[layer[n.id]].append(n.id)
    columns = _order(columns, edges)
    tallest = max((len(c) for c in columns), default=0)
    pitch = node_height + ROW_GAP
    height = tallest * pitch - ROW_GAP + 2 * MARGIN if tallest else 0
    width = count * (node_width + COLUMN_GAP) - COLUMN_GAP + 2 * MARGIN if count else 0
    by_id = {n.id: n for n in nodes}
    placed: dict[str, PlacedNode] = {}
    for i, column in enumerate(columns):
        top = MARGIN + (tallest - len(column)) * pitch / 2
        for r, node_id in enumerate(column):
            node = by_id[node_id]
            placed[node_id] = PlacedNode(
                node=node,
                layer=i,
                x=MARGIN + i * (node_width + COLUMN_GAP),
                y=top + r * pitch,
                width=node_width,
                height=node_height,
                text=fit(node.label, node_width - 2 * PADDING),
            )
    routed = [_route(placed[e.source], placed[e.target]) for e in dict.fromkeys(edges)]
    ordered = [placed[n] for column in columns for n in column]
    return Layout(width=width, height=height, nodes=ordered, edges=routed)


def _route(a: PlacedNode, b: PlacedNode) -> PlacedEdge:
    """A horizontal S-curve from ``a``'s right middle to ``b``'s left middle."""
    x1, y1 = a.x + a.width, a.y + a.height / 2
    x2, y2 = b.x, b.y + b.height / 2
    mid = (x1 + x2) / 2
    d = f"M{x1:g},{y1:g} C{mid:g},{y1:g} {mid:g},{y2:g} {x2:g},{y2:g}"
    return PlacedEdge(source=a.node.id, target=b.node.id, d=d)
