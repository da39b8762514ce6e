"""Which activations of a forward pass depend on which, read from the autograd graph of the probing pass.

The probing pass (:func:`stepwise.core.levels.resolve_levels`) runs the model once on a copy of the example that
requires grad, with the parameters frozen, so autograd records a node for every operation that depends on the
input and nothing else. Two questions are answered from those nodes without running a backward pass:

- does an upper activation depend on a lower one at all (:func:`depends_on`): a step of the SSA traversal needs
  a path from the upper level down to the lower level, or it has no derivative to follow;
- does a module merge two paths from its input (:func:`merges_paths`): a residual block adds its input (or a
  projection of it) to what its layers computed, so its output reaches its input along two paths, and a module
  inside such a block lies on one branch only. That finds skip connections in any module, whatever its
  ``forward`` code, without a table of block types.
"""

from __future__ import annotations

from torch import Tensor
from torch.autograd.graph import Node

__all__ = ["depends_on", "grad_node", "merges_paths"]


def grad_node(tensor: object) -> Node | None:
    """The autograd node that produced ``tensor`` (``None`` for a tensor autograd did not record)."""
    return tensor.grad_fn if isinstance(tensor, Tensor) else None


def _children(node: Node) -> list[Node]:
    return [child for child, _ in node.next_functions if child is not None]


def depends_on(upper: Node | None, lower: Node | None) -> bool:
    """Whether the node ``upper`` reaches the node ``lower`` through the graph (one walk, no recursion).

    Parameters
    ----------
    upper, lower : torch.autograd.graph.Node or None
        Nodes recorded when the two activations were computed; ``None`` (not recorded) depends on nothing.
    """
    if upper is None or lower is None:
        return False
    seen = {upper}
    stack = [upper]
    while stack:
        node = stack.pop()
        if node is lower:
            return True
        for child in _children(node):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return False


def merges_paths(output: Node | None, source: Node | None) -> bool:
    """Whether at least two distinct paths lead from the node ``output`` down to the node ``source``.

    Paths are counted bottom-up over the nodes between the two, each count capped at two (one pass over the
    nodes, no recursion): a residual block's output reaches its input through its layers and through the skip.
    """
    if output is None or source is None:
        return False
    paths: dict[Node, int] = {}
    stack: list[tuple[Node, bool]] = [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if node in paths:
            continue
        if node is source:
            paths[node] = 1
        elif not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if child not in paths)
        else:
            paths[node] = min(2, sum(paths.get(child, 0) for child in _children(node)))
    return paths[output] >= 2
