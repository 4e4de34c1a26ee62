"""The -k expression matcher: grammar, precedence, case-insensitivity and error messages."""
import pytest

from conformance.corpus.select import SelectionError, compile_expression

CE = ["cross_entropy/NCd1-mean-ii=-100", "cross_entropy", "float16", "ignore_index", "ls=0.1"]
KL = ["kl_div/zero-target-inf-input", "kl_div", "float64", "log_target"]


def selects(expression, haystack):
    return compile_expression(expression)(haystack)


@pytest.mark.parametrize("expression", ["", "   ", "\t\n"])
def test_empty_expression_matches_everything(expression):
    predicate = compile_expression(expression)
    assert predicate(CE) and predicate(KL) and predicate([])


def test_name_is_a_substring_of_any_haystack_string():
    assert selects("entropy", CE)
    assert selects("NCd1", CE)
    assert not selects("entropy", KL)
    assert not selects("anything", [])


def test_names_may_contain_punctuation():
    assert selects("cross_entropy/NCd1-mean", CE)
    assert selects("ls=0.1", CE)
    assert selects("ii=-100", CE)
    assert not selects("ls=0.2", CE)


def test_matching_is_case_insensitive():
    assert selects("FLOAT16", CE)
    assert selects("ncd1-MEAN", CE)
    assert selects("Kl_Div", KL)


def test_and_or_not():
    assert selects("cross_entropy and float16", CE)
    assert not selects("cross_entropy and float64", CE)
    assert selects("float64 or float16", CE)
    assert not selects("bfloat16 or float32", CE)
    assert selects("not kl_div", CE)
    assert not selects("not kl_div", KL)
    assert selects("not not kl_div", KL)


def test_chains_of_the_same_operator():
    assert selects("cross_entropy and float16 and ls=0.1 and mean", CE)
    assert not selects("cross_entropy and float16 and ls=0.1 and sum", CE)
    assert selects("a_missing or another_missing or log_target", KL)


def test_not_binds_tighter_than_and():
    # (not kl_div) and float16, not: not (kl_div and float16)
    assert selects("not kl_div and float16", CE)
    assert not selects("not kl_div and float16", KL)
    assert selects("not (kl_div and float16)", KL)


def test_and_binds_tighter_than_or():
    # kl_div or (float16 and missing): true for KL; (kl_div or float16) and missing would be false
    assert selects("kl_div or float16 and missing", KL)
    assert not selects("(kl_div or float16) and missing", KL)
    # missing and kl_div or float16 == (missing and kl_div) or float16
    assert selects("missing and kl_div or float16", CE)


def test_parentheses_group_and_nest():
    assert selects("(float16 or float64) and (ignore_index or log_target)", CE)
    assert selects("(float16 or float64) and (ignore_index or log_target)", KL)
    assert not selects("((float16 or float64) and not (kl_div or cross_entropy))", KL)
    assert selects("((kl_div))", KL)


def test_keywords_need_whitespace_or_parentheses_around_them():
    assert selects("not(kl_div)", CE)
    assert selects("(kl_div)or(cross_entropy)", CE)
    assert selects("android", ["android-case"])  # a name containing "and" is still a name


def test_predicate_accepts_any_iterable_once():
    predicate = compile_expression("float16 and cross_entropy")
    assert predicate(text for text in CE)
    assert predicate(tuple(CE))
    assert not predicate(iter(KL))


@pytest.mark.parametrize("expression, column, words", [
    ("a and (b", 7, "unbalanced parenthesis"),
    ("(a or (b and c)", 1, "unbalanced parenthesis"),
    ("a)", 2, "unbalanced parenthesis"),
    ("(a) and b)", 10, "unbalanced parenthesis"),
])
def test_unbalanced_parentheses_name_the_column(expression, column, words):
    with pytest.raises(SelectionError) as info:
        compile_expression(expression)
    message = str(info.value)
    assert f"{words} at column {column}" in message
    assert repr(expression) in message


@pytest.mark.parametrize("expression, column, found, expected", [
    ("a and", 6, "end of the expression", "a name, 'not' or '('"),
    ("or a", 1, "'or'", "a name, 'not' or '('"),
    ("not", 4, "end of the expression", "a name, 'not' or '('"),
    ("()", 2, "')'", "a name, 'not' or '('"),
    ("a b", 3, "'b'", "'and', 'or' or the end of the expression"),
    ("(a b)", 4, "'b'", "'and', 'or' or ')'"),
    ("a and and b", 7, "'and'", "a name, 'not' or '('"),
])
def test_syntax_errors_name_the_column_and_what_is_accepted(expression, column, found, expected):
    with pytest.raises(SelectionError) as info:
        compile_expression(expression)
    message = str(info.value)
    assert f"unexpected {found} at column {column}" in message
    assert f"expected {expected}" in message
    assert repr(expression) in message


def test_selection_error_is_a_value_error():
    with pytest.raises(ValueError):
        compile_expression("(")


def test_expression_is_not_evaluated_as_python():
    # Python-looking names are plain substrings, and calls are syntax errors, not code
    assert not selects("True", CE)
    assert selects("1+1", ["x1+1y"])
    with pytest.raises(SelectionError, match="unexpected '\\(' at column 11"):
        compile_expression("__import__('os')")
