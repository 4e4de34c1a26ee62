"""The one YAML loader of case, xfail and tolerance files: yaml's safe constructor (no Python objects), libyaml's
parser where it is installed, and stricter than yaml.safe_load: duplicate keys and merge keys are refused, and
aliases, nesting and integer scalars are bounded (limits.py), as the nodes are composed, before anything is
built. casefile.read_yaml reads the file and turns Refused and yaml's own errors into a CaseFileError.
"""
import yaml

from .limits import MAX_DEPTH, MAX_INT_DIGITS, MAX_YAML_NODES

__all__ = ["Refused", "load"]


class Refused(yaml.MarkedYAMLError):
    """A YAML document this loader does not accept (duplicate keys, merge keys, too deep, too large...)."""


class _StrictComposer(yaml.composer.Composer):
    """Anchors and aliases are accepted, but an alias inside the node it names (a recursive structure) is refused
    and the document with every alias expanded may have at most MAX_YAML_NODES nodes ("billion laughs");
    nesting is at most MAX_DEPTH levels. Checked as the nodes are composed, before anything is built."""

    def __init__(self):
        super().__init__()
        self._depth = 0
        self._expanded = 0  # nodes composed so far, every alias counted as the whole node it names
        self._sizes = {}  # anchor -> the expanded size of its node
        self._open = set()  # anchors whose node is still being composed

    def _count(self, nodes, mark):
        self._expanded += nodes
        if self._expanded > MAX_YAML_NODES:
            raise Refused(None, None, f"the document has more than {MAX_YAML_NODES} nodes with its aliases "
                                       "expanded", mark)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise Refused(None, None, f"the alias *{event.anchor} is inside the node it names (a recursive "
                                           "structure)", event.start_mark)
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(event.anchor, 1), event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise Refused(None, None, f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        start, anchor = self._expanded, event.anchor
        self._count(1, event.start_mark)
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)
        if anchor is not None:
            self._sizes[anchor] = self._expanded - start
        return node


class _StrictConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor, stricter: duplicate mapping keys and merge keys (``<<``) are refused, and an integer
    scalar has at most MAX_INT_DIGITS characters (Python's int() of a long one is slow or raises)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise Refused(None, None, "merge keys (<<) are not accepted; write the keys out",
                                   key_node.start_mark)
        mapping = super().construct_mapping(node, deep=deep)
        if isinstance(node, yaml.MappingNode) and len(mapping) < len(node.value):
            first = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in first:
                    raise Refused(None, None, f"duplicate key {key!r} (first at line {first[key].line + 1})",
                                   key_node.start_mark)
                first[key] = key_node.start_mark
        return mapping

    def construct_yaml_int(self, node):
        if len(str(node.value)) > MAX_INT_DIGITS:
            raise Refused(None, None, f"an integer of more than {MAX_INT_DIGITS} characters", node.start_mark)
        return super().construct_yaml_int(node)


_StrictConstructor.add_constructor("tag:yaml.org,2002:int", _StrictConstructor.construct_yaml_int)

if getattr(yaml, "__with_libyaml__", False):  # libyaml's parser (events only: composing stays in Python, above)
    from yaml._yaml import CParser

    class _Loader(_StrictComposer, CParser, _StrictConstructor, yaml.resolver.Resolver):
        def __init__(self, stream):
            CParser.__init__(self, stream)
            _StrictConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            _StrictComposer.__init__(self)
else:
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _StrictComposer,
                  _StrictConstructor, yaml.resolver.Resolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            _StrictComposer.__init__(self)
            _StrictConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def load(text):
    """The document of a YAML text; raises Refused, yaml.YAMLError, RecursionError or ValueError."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
