import sys

try:
    from bench.cli.main import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C while starting up (imports, argument parsing): one line, no traceback
    print("daa-bench: interrupted", file=sys.stderr)
    code = 130
raise SystemExit(code)
