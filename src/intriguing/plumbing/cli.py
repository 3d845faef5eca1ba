"""Command line: ``python -m intriguing data|train|reproduce|bench|export-web ...``.

Why: ``make book`` and a reader at a terminal need the same steps the chapters take: fetch and
verify MNIST, train and cache the zoo, write the results files, and measure the attack.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import config


def _cmd_data(args: argparse.Namespace) -> int:
    from ..engine import data

    folder = data.ensure_mnist()
    print(f"MNIST verified in {folder}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..engine import zoo

    names = zoo.ALL if args.all else args.names
    if not names:
        print("error: name one or more models, or pass --all", file=sys.stderr)
        return 2
    for name in names:
        zoo.spec(name)  # validate every name before spending time on any
    for name in names:
        start = time.perf_counter()
        cached = zoo.is_cached(name, scale=args.scale) and not args.retrain
        zoo.load(name, scale=args.scale, retrain=args.retrain, device=args.device)
        state = "cached" if cached else f"trained in {time.perf_counter() - start:.1f} s"
        print(f"{name}: {state} -> {zoo.cache_path(name, args.scale)}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from ..experiments import REGISTRY

    names = args.names or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"error: unknown experiment(s) {unknown}; choose from {list(REGISTRY)}",
              file=sys.stderr)
        return 2
    for name in names:
        start = time.perf_counter()
        REGISTRY[name].run(scale=args.scale)
        print(f"{name}: written in {time.perf_counter() - start:.1f} s")
    return 0


def _cmd_assets(args: argparse.Namespace) -> int:
    from . import webassets

    return webassets.main(["--force"] if args.force else [])


def _cmd_run_all(args: argparse.Namespace) -> int:
    from . import pipeline

    argv = ["--jobs", str(args.jobs)] if args.jobs is not None else []
    argv += ["--scale", args.scale] if args.scale else []
    return pipeline.main(argv + (["--dry-run"] if args.dry_run else []))


def _cmd_models(args: argparse.Namespace) -> int:
    from . import archive

    try:
        if args.action == "pack":
            info = archive.pack(args.out or archive.default_path(args.scale), scale=args.scale)
            print(f"{info['path']}: {info['bytes'] / 1e6:.2f} MB ({info['member_bytes'] / 1e6:.2f} "
                  f"MB unpacked), {len(info['models'])} models, {len(info['results'])} results "
                  f"files, {len(info['frames'])} frames files, {info['scale']} scale")
            print(f"sha256 {info['sha256']}")
        else:
            info = archive.install(args.source, sha256=args.sha256)
            print(f"installed into {info['data_dir']}: {len(info['models'])} models, "
                  f"{len(info['results'])} results files, {info['frames']} frames files "
                  f"({info['bytes'] / 1e6:.2f} MB), {info['scale']} scale")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    return bench.main(args.rest)


def _cmd_export_web(args: argparse.Namespace) -> int:
    from ..engine import webexport

    models = None
    if args.models is not None:
        models = [name.strip() for name in args.models.split(",") if name.strip()]
    index = webexport.export(args.out, scale=args.scale, models=models, n_images=args.images,
                             dtype=args.dtype, predictors=args.predictors,
                             agreement_sets=args.agreement_sets)
    for m in index["models"]:
        print(f"{m['name']}: {m['file']} ({m['bytes'] / 1e6:.2f} MB, layers {m['sizes']})")
        if "predictor" in m:
            pr, a = m["predictor"], m["predictor"]["agreement"]
            print(f"  {pr['file']} ({pr['bytes'] / 1e6:.2f} MB): same class on {a['agree']} of "
                  f"{a['inputs']} inputs, largest logit change {a['max_logit_error']:.2g}")
    print(f"images: {index['images']['file']} ({index['images']['bytes'] / 1e6:.2f} MB, "
          f"{index['images']['n']} test images)")
    return 0


def _cmd_set_repository(args: argparse.Namespace) -> int:
    from . import bootstrap

    for path in bootstrap.apply(args.url):
        print(f"updated {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    from ..engine import zoo

    p = argparse.ArgumentParser(
        prog="python -m intriguing",
        description="Reproduce Szegedy et al. (2014), 'Intriguing properties of neural networks'.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_scale(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--scale", choices=sorted(config.SCALES), default=None,
                        help=f"experiment size (default: ${config.SCALE_ENV} or 'book')")
        return sp

    sd = sub.add_parser("data", help="fetch MNIST and verify it against pinned sha256s")
    sd.set_defaults(func=_cmd_data)

    st = with_scale(sub.add_parser("train", help="train and cache zoo models"))
    st.add_argument("names", nargs="*", metavar="NAME", help=f"models: {', '.join(zoo.ALL)}")
    st.add_argument("--all", action="store_true", help="every model of the zoo")
    st.add_argument("--retrain", action="store_true", help="ignore the cache")
    st.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    st.set_defaults(func=_cmd_train)

    sr = with_scale(sub.add_parser("reproduce", help="run experiments, write data/results/*.json"))
    sr.add_argument("names", nargs="*", metavar="NAME", help="experiments (default: all)")
    sr.set_defaults(func=_cmd_reproduce)

    sa = sub.add_parser("assets", help="fetch the book's offline JavaScript (widgets, MathJax)")
    sa.add_argument("--force", action="store_true", help="fetch again even if present")
    sa.set_defaults(func=_cmd_assets)

    sp = with_scale(sub.add_parser(
        "run-all", help="train every model and run every experiment, one single-threaded "
                        "process per core (logs in data/logs/<scale>/)"))
    sp.add_argument("--jobs", type=int, default=None,
                    help="processes at a time (default: the number of CPUs, at most 4)")
    sp.add_argument("--dry-run", action="store_true", help="print the tasks in order and stop")
    sp.set_defaults(func=_cmd_run_all)

    sm = sub.add_parser("models", help="pack the trained models and the results into one "
                                       "archive, or install one (no training)")
    sma = sm.add_subparsers(dest="action", required=True)
    smp = with_scale(sma.add_parser("pack", help="write the archive (after make book)"))
    smp.add_argument("--out", default=None, help="the zip to write (default: "
                                                 "book/_web/html/downloads/intriguing-models-"
                                                 "<scale>.zip)")
    smp.set_defaults(func=_cmd_models)
    smi = sma.add_parser("install", help="verify an archive and put it into data/")
    smi.add_argument("source", metavar="ARCHIVE_OR_URL", help="a path or an http(s) URL")
    smi.add_argument("--sha256", default=None, help="the archive's expected sha256")
    smi.set_defaults(func=_cmd_models)

    sb = sub.add_parser("bench", help="benchmarks (e.g. `bench attack --json`)")
    sb.add_argument("rest", nargs=argparse.REMAINDER, help="benchmark name and its options")
    sb.set_defaults(func=_cmd_bench)

    sw = with_scale(sub.add_parser(
        "export-web", help="write trained weights and test images as scripts for the browser "
                           "engine (default: book/_web/html/attack-data)"))
    sw.add_argument("--out", default=None, help="folder to write (default: "
                                                "book/_web/html/attack-data)")
    sw.add_argument("--models", default=None,
                    help="comma-separated zoo names (default: every model but the ConvNet)")
    sw.add_argument("--images", type=int, default=500, help="first test images to ship")
    sw.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                    help="weight encoding (default: float32)")
    sw.add_argument("--no-predictors", dest="predictors", action="store_false",
                    help="skip the float16 copies that the transfer table predicts with")
    sw.add_argument("--agreement-sets", action="store_true",
                    help="also check the float16 copies on each Table 1 model's adversarial "
                         "examples (cached by run-all)")
    sw.set_defaults(func=_cmd_export_web)

    sr = sub.add_parser("set-repository", help="set the repository's address (_config.yml's "
                                               "repository.url and every chapter's first cell)")
    sr.add_argument("url", help='an http(s) address, or "" for none')
    sr.set_defaults(func=_cmd_set_repository)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status. Bad arguments exit with status 2 and a message."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
