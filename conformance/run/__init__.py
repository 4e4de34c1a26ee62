"""The run: the one run loop (runner.py), its isolated workers (isolation.py), and a session as the command line
sees it (session.py)."""
