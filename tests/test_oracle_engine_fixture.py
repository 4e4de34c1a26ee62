"""The engines the oracle's tests run on. A test module that imports ``oracle_engine`` (an autouse fixture) runs
each of its tests once per engine: mpmath, and arb where python-flint is installed (skipped, and said so,
where it is not). The fixture scopes the default engine with oracle.using_engine, so every oracle call of the
test, certify included, runs on that engine (or falls back from arb to mpmath as it would in a run)."""
import pytest

import oracle

ENGINE_PARAMS = [
    pytest.param("mpmath", id="mpmath"),
    pytest.param("arb", id="arb", marks=pytest.mark.skipif(not oracle.is_available("arb"),
                                                           reason="python-flint is not installed")),
]


@pytest.fixture(params=ENGINE_PARAMS, autouse=True)
def oracle_engine(request):
    with oracle.using_engine(request.param):
        yield request.param
