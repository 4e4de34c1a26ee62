"""The fuzzer: hypothesis strategies of valid and invalid calls (strategies.py, invalid.py, calls.py), the loop
that checks them with the run loop of ``run`` and shrinks failures (engine.py), torch's known deviations as
narrow rules (known.py), and the writer of found cases (found.py). The command line is conformance/cli/fuzz.py."""
