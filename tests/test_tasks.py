"""The worker pool's task queue (conformance/run/tasks.py): grouped by the first input's shape, every task handed
out exactly once, returned work first, re-runs only to fresh workers."""
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from conformance.run.tasks import TaskQueue, affinity


def case(name, shape, function="softmax"):
    return SimpleNamespace(id=name, function=function, inputs={"input": {"shape": list(shape)},
                                                               "target": {"shape": list(shape[:1])}})


def task(name, shape, rerun=False, function="softmax"):
    return case(name, shape, function), ["float32"], rerun


def names(tasks):
    return [t[0].id for t in tasks]


def test_cases_of_one_first_input_shape_share_a_group_whatever_the_function():
    assert affinity(case("a", (4, 5))) == affinity(case("b", (4, 5), "cross_entropy"))
    assert affinity(case("a", (4, 5))) != affinity(case("c", (5, 4)))
    assert affinity(SimpleNamespace(inputs={"input": {"values": [[1.0, 2.0]]}})) == repr([[1.0, 2.0]])


def test_a_worker_keeps_to_its_group_and_another_takes_a_group_nobody_holds():
    queue = TaskQueue([task("a1", (4, 5)), task("b1", (3,)), task("a2", (4, 5)), task("b2", (3,))])
    first = queue.take(reruns=True, own=None, held=set())
    second = queue.take(reruns=True, own=None, held={affinity(first[0])})
    assert names([first, second]) == ["a1", "b1"]
    assert names([queue.take(False, affinity(first[0]), {affinity(second[0])})]) == ["a2"]
    assert names([queue.take(False, affinity(second[0]), {affinity(first[0])})]) == ["b2"]
    assert not queue


def test_a_worker_with_nothing_of_its_own_steals_the_tail_of_the_largest_group():
    queue = TaskQueue([task("a1", (4, 5)), task("a2", (4, 5)), task("a3", (4, 5)), task("b1", (3,))])
    holder = affinity(case("x", (4, 5)))
    assert names([queue.take(False, holder, set())]) == ["a1"]
    assert names([queue.take(False, None, {holder})]) == ["b1"]  # a group nobody holds first
    assert names([queue.take(False, None, {holder})]) == ["a3"]  # then the largest group's tail
    assert names([queue.take(False, holder, set())]) == ["a2"]


def test_returned_work_goes_first_and_a_rerun_only_to_a_fresh_worker():
    queue = TaskQueue([task("a1", (4, 5))])
    queue.appendleft(task("again", (2,), rerun=True))
    queue.appendleft(task("rest", (2,)))
    assert names([queue.take(False, None, set())]) == ["rest"]
    assert names([queue.take(False, None, set())]) == ["a1"]  # not the re-run: this worker is not fresh
    assert queue.take(False, None, set()) is None and queue
    assert names([queue.take(True, None, set())]) == ["again"]
    assert not queue


@settings(max_examples=200, deadline=None, derandomize=True)
@given(shapes=st.lists(st.sampled_from([(2,), (3, 4), (4, 5), (1, 2, 3)]), min_size=0, max_size=30),
       draws=st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=60, max_size=60))
def test_every_task_is_handed_out_exactly_once(shapes, draws):
    tasks = [task(f"t{number}", shape) for number, shape in enumerate(shapes)]
    queue, owned, handed = TaskQueue(tasks), [None, None, None], []
    for worker, hand_back in draws:
        got = queue.take(False, owned[worker], {g for other, g in enumerate(owned) if other != worker})
        if got is None:
            continue
        owned[worker] = affinity(got[0])
        if hand_back and len(handed) % 3 == 0:  # a worker that failed: its case goes back
            queue.appendleft(got)
        else:
            handed.append(got)
    while queue:
        handed.append(queue.take(False, None, set()))
    assert sorted(names(handed)) == sorted(names(tasks))
