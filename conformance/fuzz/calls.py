"""The fuzzer's draw: a function and a dtype from the selection, then a valid call (strategies.py) or an invalid
one (invalid.py)."""
from hypothesis import strategies as st

from ..spec.dtypes import DTYPES
from ..spec.names import FUNCTIONS
from .invalid import invalid_calls
from .strategies import HEADROOM, dtypes, valid_calls


def calls(functions=FUNCTIONS, dtype_names=DTYPES, invalid=True, full_range=False):
    """The fuzzer's calls: a function and dtype from the selection, then a valid call (3 in 4) or an invalid one;
    full_range: values up to the largest of each dtype (default: HEADROOM binary orders below it)."""
    @st.composite
    def draw_call(draw):
        function, dtype = draw(st.sampled_from(tuple(functions))), draw(dtypes(dtype_names))
        if invalid and draw(st.integers(0, 3)) == 3:
            return draw(invalid_calls(function, dtype))
        return draw(valid_calls(function, dtype, 0 if full_range else HEADROOM))

    return draw_call()
