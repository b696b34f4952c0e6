import sys

from bench.common import signals

signals.install()  # before anything heavy is imported: a signal while torch loads ends with one line too
try:
    from bench.cli.main import main

    code = main()
except KeyboardInterrupt as interrupt:  # while starting up (imports, argument parsing): one line, no traceback
    how, code = signals.status_of(interrupt)
    command = next((arg for arg in sys.argv[1:2] if arg.isidentifier()), "")
    print(f"daa-bench{' ' * bool(command)}{command}: {how} while starting; no result file was written",
          file=sys.stderr)
signals.settle()
raise SystemExit(code)
