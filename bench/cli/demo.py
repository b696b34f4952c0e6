"""`python -m bench demo`: generate data, train SGR and SAF with DAA, evaluate them and SGRAF (CPU)."""

from pathlib import Path

from bench.common.terminal import summary


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="the whole pipeline on generated data (CPU, no downloads)",
                                   description=summary(__doc__))
    parser.add_argument("--data-root", type=Path, default=Path("data/demo"), help="where the generated data goes")
    parser.add_argument("--models-root", type=Path, default=Path("models/demo"), help="where the trained models go")
    parser.add_argument("--results", type=Path, default=Path("results/demo"),
                        help="where demo-*.csv/json go (a folder of their own: they are runs on generated data)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from bench.common.progress import note
    from bench.demo_plan import DemoPlan, plan_line

    note(plan_line(DemoPlan(), args.data_root, args.models_root, args.results))  # before torch loads
    from bench.demo import run_demo

    run_demo(args.data_root, args.models_root, args.results, announced=True)
    return 0
