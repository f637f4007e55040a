"""Reading a YAML config file safely: no code, no base-60 times, no alias bombs.

YAML aliases let a few lines stand for billions of values ("billion laughs"): the parser keeps
them shared, but anything that walks the result (merging, validation, an error message) pays
for every copy. The document is therefore composed first, its expanded size measured on the
node graph (each node once, so the check itself is linear), and refused when it would grow past
a small multiple of the file before a single value is built.
"""

from __future__ import annotations

from typing import Any

import yaml

from vec_inf_flows.errors import ConfigError

# A document may expand to this multiple of its own length (plus a little slack for tiny
# files); honest anchors (one shared vllm_args block) stay far below it.
EXPANSION_FACTOR = 10
EXPANSION_SLACK = 64 * 1024

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader without YAML 1.1 base-60 numbers: ``time: 10:00:00`` stays a string."""


def _int_or_text(loader: Any, node: yaml.ScalarNode) -> object:
    text = loader.construct_scalar(node)
    return text if ":" in text else yaml.SafeLoader.construct_yaml_int(loader, node)


def _float_or_text(loader: Any, node: yaml.ScalarNode) -> object:
    text = loader.construct_scalar(node)
    return text if ":" in text else yaml.SafeLoader.construct_yaml_float(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_text)
_Loader.add_constructor("tag:yaml.org,2002:float", _float_or_text)


class _TooLarge(Exception):
    pass


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Characters the document would have with every alias written out (raises past ``limit``).

    Sizes are memoised per node, so a node shared by a thousand aliases is measured once; a
    node that contains itself (``&a [*a]``) has no finite size.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _TooLarge("an alias refers to a node that contains it")
        open_nodes.add(key)
        if isinstance(node, yaml.ScalarNode):
            total = len(node.value) + 2
        elif isinstance(node, yaml.SequenceNode):
            total = 2 + sum(size(child) for child in node.value)
        else:
            total = 2 + sum(size(key_node) + size(value) for key_node, value in node.value)
        open_nodes.discard(key)
        if total > limit:
            raise _TooLarge(f"its aliases expand it past {limit} characters")
        sizes[key] = total
        return total

    return size(root)


def parse_yaml(text: str, label: str) -> object:
    """The document in ``text`` as plain Python values; any problem is one ``ConfigError``."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        limit = EXPANSION_FACTOR * len(text) + EXPANSION_SLACK
        try:
            expanded_size(node, limit)
        except _TooLarge as error:
            raise ConfigError(
                f"{label}: refused: {error} ({len(text)} characters written; YAML aliases"
                f" may expand a file to at most {EXPANSION_FACTOR}x its size)."
            ) from None
        except RecursionError:
            raise ConfigError(f"{label}: refused: nested too deeply.") from None
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"{label}{line}: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{label}: invalid YAML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{label}: refused: nested too deeply.") from None
    finally:
        loader.dispose()
