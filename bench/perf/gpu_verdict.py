"""The verdict of `make gpu-check`: pass only when every part ran and no correctness check failed.

A part that was skipped (a module missing), not applicable, not asked for (`--parts`), not reached or
still running (the check was stopped), or a speed part that failed (no figures) leaves the check
`incomplete`:
a check that did not run is not a pass. A failed correctness part makes it `fail` whatever else.
"""

EXIT_STATUS = {"pass": 0, "fail": 1, "incomplete": 3}  # 2: the check could not start (no GPU, bad arguments)
NOT_RUN = ("skip", "n/a", "unfinished")  # row statuses of checks that did not run (to the end)


def unfinished(rows: list[dict], parts: tuple[str, ...], correctness: tuple[str, ...], selected: list[str]) -> dict:
    """{part: why} for each of `parts` that did not run to the end, judged from the rows so far."""
    reasons = {}
    for name in parts:
        part_rows = [row for row in rows if row["part"] == name]
        if not part_rows:
            reasons[name] = "not reached" if name in selected else "not asked for (--parts)"
            continue
        gaps = [row for row in part_rows if row["status"] in NOT_RUN or
                (name not in correctness and row["status"] == "fail")]
        if gaps:
            reasons[name] = f"{gaps[0]['status']}: {gaps[0].get('detail', '')}"
    return reasons


def verdict(rows: list[dict], parts: tuple[str, ...], correctness: tuple[str, ...],
            selected: list[str]) -> tuple[str, dict, list[str]]:
    """(pass | fail | incomplete, {part: why it did not run}, the correctness parts that failed)."""
    failed = [name for name in correctness if any(r["part"] == name and r["status"] == "fail" for r in rows)]
    reasons = unfinished(rows, parts, correctness, selected)
    return ("fail" if failed else "incomplete" if reasons else "pass"), reasons, failed


def verdict_row(outcome: str, reasons: dict, failed: list[str]) -> dict:
    """The CSV's last row: the whole check's verdict and what it lacked."""
    return {"part": "verdict", "check": "whole check", "status": outcome, "detail": summary(outcome, reasons, failed)}


def summary(outcome: str, reasons: dict, failed: list[str]) -> str:
    """One line: what failed, and which parts did not run and why."""
    text = {"pass": "every part ran and no check failed", "fail": "FAILED: " + ", ".join(failed),
            "incomplete": "INCOMPLETE"}[outcome]
    if reasons:
        text += "; not run: " + "; ".join(f"{name} ({why})" for name, why in reasons.items())
    return text
