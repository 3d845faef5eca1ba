"""The task graph behind `make book`: order, parallelism, failures, and its fit to the package."""

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


def test_run_respects_needs_and_runs_in_parallel(tmp_path):
    graph = {t.name: t for t in [_task("slow", sleep=0.6), _task("quick", sleep=0.6),
                                 _task("after", ["slow", "quick"])]}
    order, lines = [], []
    seconds = pipeline.run(graph, jobs=2, log_dir=tmp_path, launch=_launch(order),
                           say=lines.append, poll=0.02)
    assert set(seconds) == set(graph) and order[-1] == "after"
    assert (tmp_path / "after.log").read_text().strip() == "after"
    assert any("[3/3] after done" in line for line in lines)
    # The two independent tasks overlapped: the whole run took less than their sum.
    assert max(seconds["slow"], seconds["quick"]) < 1.2


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
