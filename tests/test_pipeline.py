"""The task graph behind `make book`: order, parallelism, failures, and its fit to the package."""

import json
import subprocess
import sys

import pytest

from intriguing import zoo
from intriguing.experiments import REGISTRY
from intriguing.plumbing import pipeline
from intriguing.plumbing.pipeline import Task


def _task(name, needs=(), cost=1.0, code=0, sleep=0.0):
    argv = (f"import time, sys; time.sleep({sleep}); print({name!r}); sys.exit({code})",)
    return Task(name, argv, tuple(needs), cost)


#: A task that records its wall-clock ``[start, end]`` in ``<folder>/<me>.json`` and does not end
#: before ``peer`` has started (or ``wait`` seconds have passed). Two such tasks run side by side
#: therefore overlap in time, however slowly the machine starts them, and one after the other
#: they cannot.
_MEET = """
import json, pathlib, time
folder, me, peer, wait = pathlib.Path({folder!r}), {me!r}, {peer!r}, {wait!r}
start = time.time()
(folder / (me + ".started")).touch()
deadline = time.monotonic() + wait
while not (folder / (peer + ".started")).exists() and time.monotonic() < deadline:
    time.sleep(0.005)
(folder / (me + ".json")).write_text(json.dumps([start, time.time()]))
print(me)
"""


def _meeting(name, peer, folder, wait):
    return Task(name, (_MEET.format(folder=str(folder), me=name, peer=peer, wait=wait),), (), 1.0)


def _launch(order):
    def launch(task, log):
        order.append(task.name)
        with open(log, "w") as fh:
            return subprocess.Popen([sys.executable, "-c", task.argv[0]], stdout=fh,
                                    stderr=subprocess.STDOUT)
    return launch


def test_every_model_and_experiment_is_a_task():
    graph = pipeline.tasks("smoke")
    assert {n for n in graph if n.startswith("train:")} == {f"train:{m}" for m in zoo.ALL}
    assert {n for n in graph if n.startswith("reproduce:")} == {
        f"reproduce:{e}" for e in REGISTRY}
    # Table 2 reuses Table 1's adversarial sets: it waits for Table 1 (and its models).
    assert "reproduce:table1" in graph["reproduce:table2"].needs
    assert {f"train:{m}" for m in zoo.TABLE1} <= set(graph["reproduce:table2"].needs)
    assert graph["train:FC10(1)"].argv == ("train", "FC10(1)", "--scale", "smoke")
    pipeline.priorities(graph)  # a DAG


def test_priorities_follow_the_longest_chain():
    graph = {t.name: t for t in [_task("a", cost=1), _task("b", ["a"], cost=5),
                                 _task("c", cost=3)]}
    assert pipeline.priorities(graph) == {"a": 6, "b": 5, "c": 3}


@pytest.mark.parametrize("graph, match", [
    ({"a": _task("a", ["b"]), "b": _task("b", ["a"])}, "cycle"),
    ({"a": _task("a", ["zz"])}, "not a task"),
])
def test_bad_graphs_are_named(graph, match):
    with pytest.raises(ValueError, match=match):
        pipeline.priorities(graph)


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_respects_needs_and_runs_independent_tasks_side_by_side(tmp_path, jobs):
    # side by side, each task ends as soon as the other has started; alone, the first waits
    wait = 30.0 if jobs == 2 else 0.2
    graph = {t.name: t for t in [_meeting("left", "right", tmp_path, wait),
                                 _meeting("right", "left", tmp_path, wait),
                                 _task("after", ["left", "right"])]}
    order, lines = [], []
    seconds = pipeline.run(graph, jobs=jobs, log_dir=tmp_path / "logs", launch=_launch(order),
                           say=lines.append, poll=0.02)
    assert set(seconds) == set(graph) and order[-1] == "after"
    assert (tmp_path / "logs" / "after.log").read_text().strip() == "after"
    assert any("[3/3] after done" in line for line in lines)
    (start_l, end_l), (start_r, end_r) = (json.loads((tmp_path / f"{n}.json").read_text())
                                          for n in ("left", "right"))
    overlap = max(start_l, start_r) < min(end_l, end_r)
    assert overlap == (jobs == 2), (jobs, start_l, end_l, start_r, end_r)


def test_a_failure_stops_new_tasks_and_names_the_log(tmp_path):
    graph = {t.name: t for t in [_task("bad", code=3, cost=9), _task("next", ["bad"]),
                                 _task("other", sleep=0.2)]}
    order = []
    with pytest.raises(RuntimeError, match=r"task bad failed with exit status 3") as info:
        pipeline.run(graph, jobs=2, log_dir=tmp_path, launch=_launch(order), say=lambda _: None,
                     poll=0.02)
    assert "next" not in order and "bad" in str(info.value)


@pytest.mark.parametrize("jobs", [0, 1.5, True])
def test_jobs_must_be_a_positive_int(tmp_path, jobs):
    with pytest.raises(ValueError, match="jobs must be a positive int"):
        pipeline.run({}, jobs=jobs, log_dir=tmp_path)


def test_dry_run_prints_the_plan(capsys):
    assert pipeline.main(["--dry-run", "--scale", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "reproduce:table5" in out and "needs reproduce:table1" in out


def test_default_jobs_is_one_per_usable_cpu_up_to_the_cap(monkeypatch):
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert pipeline.default_jobs() == 2
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: set(range(64)),
                        raising=False)
    assert pipeline.default_jobs() == pipeline.MAX_DEFAULT_JOBS
