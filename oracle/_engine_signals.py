"""The two exceptions the engines raise to the code that chooses them (oracle/_engine.py), in a module of their
own so that an engine needs nothing from its chooser."""


class Undecided(Exception):
    """The active engine cannot hold a value or take a decision that the formula needs; the call moves to mpmath."""


class EngineUnavailableError(RuntimeError):
    """An engine was asked for by name, but its library is not installed (or too old)."""
