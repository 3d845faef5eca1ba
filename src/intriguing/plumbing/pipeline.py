"""Train the zoo and run every experiment as a graph of tasks, one process per core.

Why: ``make book`` on a 2-core machine spends most of its time training ten models and running
ten experiments. Torch gains little from a second thread on the book's small networks (batch-100
MLP steps, L-BFGS on a 60,000 x 784 matrix), so two single-threaded processes side by side do
1.2-1.9 times the work of one process with two threads (measured on the project's 2-core
machine: FC10(1e-4)'s L-BFGS 50 iterations in 12.5 s on 2 threads, two such runs side by side in
19.4 s; FC200-200-10 1.1 times slower beside another job than alone). ``python -m intriguing
run-all`` runs ``python -m intriguing train NAME`` and ``reproduce NAME`` as subprocesses with one
thread each, each as soon as what it needs is done (models before the experiments that load
them, Table 1's and Table 3's adversarial sets before the experiments that reuse them), the
longest chain first. Each task's output goes to ``data/logs/<scale>/<task>.log``; the terminal
shows one line per task. Results are the same as running the steps one after another: every
task writes through the same caches, atomically.

The graph is read from the zoo (``zoo.ALL``) and the experiments' registry
(``experiments.REGISTRY``: each experiment's models and the experiments it waits for), never
typed here. Why not ``make -j`` on per-task targets: make would need the same graph written out
as rules (generated from the registry, or typed twice), starts ready targets in the order it
reads them rather than longest chain first (on 2 cores, starting adversarial training last adds
its five minutes to the end), and cannot stop starting new tasks after a failure while letting
the running ones finish. This scheduler does only those three things; caching stays with the
tasks themselves.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import checks, config

#: The default number of processes is capped: each task can hold a few GB (the float64
#: training set of the L-BFGS models alone is 376 MB, an attacked set's tensors more).
MAX_DEFAULT_JOBS = 4

@dataclass(frozen=True)
class Task:
    """One step: a command line of the package's CLI, what must finish first, a rough cost."""

    name: str
    argv: tuple[str, ...]
    needs: tuple[str, ...]
    cost: float


def tasks(scale: str | config.Scale | None = None) -> dict[str, Task]:
    """Every training and experiment task at ``scale``, by name (``train:NAME``,
    ``reproduce:NAME``), from the zoo (``zoo.ALL``) and the experiments' registry."""
    from ..engine import zoo
    from ..experiments import REGISTRY

    sc = config.get_scale(scale)
    out = {}
    for name in zoo.ALL:
        out[f"train:{name}"] = Task(f"train:{name}", ("train", name, "--scale", sc.name), (),
                                    zoo.spec(name).train_cost)
    for e in REGISTRY.values():
        needs = (*(f"reproduce:{x}" for x in e.after), *(f"train:{m}" for m in e.models))
        out[f"reproduce:{e.name}"] = Task(f"reproduce:{e.name}",
                                          ("reproduce", e.name, "--scale", sc.name), needs,
                                          e.cost)
    return out


def priorities(graph: dict[str, Task]) -> dict[str, float]:
    """Each task's cost plus the longest chain of tasks waiting on it (critical-path order).

    Raises:
        ValueError: a task needs one that is not in ``graph``, or the needs form a cycle.
    """
    waiting: dict[str, list[str]] = {name: [] for name in graph}
    for task in graph.values():
        for need in task.needs:
            if need not in graph:
                raise ValueError(f"task {task.name!r} needs {need!r}, which is not a task")
            waiting[need].append(task.name)
    memo: dict[str, float] = {}

    def chain(name: str, seen: tuple[str, ...]) -> float:
        if name in seen:
            raise ValueError(f"tasks form a cycle: {' -> '.join((*seen, name))}")
        if name not in memo:
            memo[name] = graph[name].cost + max(
                (chain(w, (*seen, name)) for w in waiting[name]), default=0.0)
        return memo[name]

    return {name: chain(name, ()) for name in graph}


def run(graph: dict[str, Task], *, jobs: int, log_dir: Path,
        launch: Callable[[Task, Path], subprocess.Popen] | None = None,
        say: Callable[[str], object] = print, poll: float = 0.2) -> dict[str, float]:
    """Run every task of ``graph``, at most ``jobs`` at a time; returns each task's seconds.

    A task starts when everything it needs has finished, the highest ``priorities`` first. If a
    task fails, no new task starts, the running ones finish, and the failure is raised with the
    end of the task's log.

    Raises:
        ValueError: ``jobs`` is not a positive int; the graph is not a DAG (see ``priorities``).
        RuntimeError: a task exited with a non-zero status.
    """
    checks.positive_int("jobs", jobs)
    rank = priorities(graph)
    launch = launch or _launch
    log_dir.mkdir(parents=True, exist_ok=True)
    done: dict[str, float] = {}
    running: dict[str, tuple[subprocess.Popen, float, Path]] = {}
    failed: list[tuple[str, int, Path]] = []
    start_all = time.perf_counter()
    while len(done) + len(failed) < len(graph):
        ready = sorted((n for n, t in graph.items()
                        if n not in done and n not in running and not failed
                        and all(need in done for need in t.needs)),
                       key=lambda n: (-rank[n], n))
        for name in ready[:jobs - len(running)]:
            log = log_dir / (_slug(name) + ".log")
            running[name] = (launch(graph[name], log), time.perf_counter(), log)
            say(f"      {name} started (log: {log})")
        if not running:
            break  # a failure left the rest unstartable
        time.sleep(poll)
        for name, (proc, started, log) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            del running[name]
            seconds = time.perf_counter() - started
            if code == 0:
                done[name] = seconds
                say(f"[{len(done)}/{len(graph)}] {name} done in {seconds:.0f} s "
                    f"({time.perf_counter() - start_all:.0f} s in all)")
            else:
                failed.append((name, code, log))
                say(f"{name} FAILED (exit status {code}); waiting for the running tasks")
    if failed:
        name, code, log = failed[0]
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        raise RuntimeError(f"task {name} failed with exit status {code}; the end of {log}:\n"
                           f"{tail}")
    return done


def default_jobs() -> int:
    """One process per CPU this process may run on (its affinity, like ``nproc``), at most
    ``MAX_DEFAULT_JOBS``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_JOBS))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def _launch(task: Task, log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "intriguing", *task.argv], stdout=fh,
                                stderr=subprocess.STDOUT, env=env)


def main(argv: Sequence[str] | None = None) -> int:
    """``run-all [--jobs N] [--scale S] [--dry-run]``; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m intriguing run-all",
                                description="Train every model and run every experiment, "
                                            "one single-threaded process per core.")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help=f"processes at a time (default: the number of CPUs, at most "
                        f"{MAX_DEFAULT_JOBS})")
    p.add_argument("--scale", choices=sorted(config.SCALES), default=None,
                   help=f"experiment size (default: ${config.SCALE_ENV} or 'book')")
    p.add_argument("--dry-run", action="store_true", help="print the tasks in order and stop")
    args = p.parse_args(argv)
    sc = config.get_scale(args.scale)
    graph = tasks(sc)
    if args.dry_run:
        rank = priorities(graph)
        for name in sorted(graph, key=lambda n: -rank[n]):
            print(f"{name:32s} needs {', '.join(graph[name].needs) or '-'}")
        return 0
    try:
        seconds = run(graph, jobs=args.jobs, log_dir=config.data_dir() / "logs" / sc.name)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"all {len(seconds)} tasks done; task time {sum(seconds.values()):.0f} s on "
          f"{args.jobs} process(es)")
    return 0
