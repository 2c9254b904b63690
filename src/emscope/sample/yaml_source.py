"""Read a YAML file keeping its node tree, so errors about parsed values can name their line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emscope.errors import InputError


def read_yaml_with_nodes(path: Path) -> tuple[Any, Node | None]:
    """Parse ``path`` with the safe loader; return the data and its root node (None when empty).

    Anchors and aliases resolve as in ``yaml.safe_load``; a syntax error becomes an
    :class:`InputError` with the line YAML reports.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a BOM is not data
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", file=path) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc.reason}", file=path) from exc
    loader = yaml.SafeLoader(text)
    root: Node | None = None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"invalid YAML: {problem}", file=path, line=line) from exc
    except ValueError as exc:  # a value YAML parses but Python refuses: a 5,000-digit integer
        line = _first_long_number_line(root)
        raise InputError(f"invalid YAML value: {exc}", file=path, line=line) from exc
    finally:
        loader.dispose()
    return data, root


def _first_long_number_line(root: Node | None) -> int | None:
    """The line of the first scalar too long for Python's int conversion (4,300 digits)."""
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            if len(node.value) > 4300 and node.value.lstrip("+-").replace("_", "").isdigit():
                return node_line(node)
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
    return None


def node_line(node: Node) -> int:
    """1-based line where ``node`` starts (for an alias: where its anchor is defined)."""
    return int(node.start_mark.line) + 1


def child_node(node: Node, key: str | int) -> Node | None:
    """The value node under a mapping key (following ``<<`` merges) or a sequence index."""
    if isinstance(node, SequenceNode) and isinstance(key, int):
        return node.value[key] if 0 <= key < len(node.value) else None
    if not isinstance(node, MappingNode):
        return None
    merged: list[Node] = []
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == str(key):
            return value_node
        if isinstance(key_node, ScalarNode) and key_node.value == "<<":
            merged.extend(
                value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            )
    for source in merged:
        found = child_node(source, key)
        if found is not None:
            return found
    return None


def line_of(node: Node | None, path: Sequence[str | int]) -> int | None:
    """The line of the deepest node found along ``path`` below ``node``."""
    if node is None:
        return None
    line = node_line(node)
    current: Node | None = node
    for key in path:
        current = child_node(current, key) if current is not None else None
        if current is None:
            break
        line = node_line(current)
    return line
