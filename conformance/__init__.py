"""The conformance runner: checks loss-function implementations against the oracle within stated tolerances."""
__version__ = "0.2.0"
