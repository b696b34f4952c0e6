"""How intervals and p-values read in tables: `[low, high]` and `< 0.001`, never ±half-width.

Bootstrap intervals are not symmetric (medr 13 with [8, 30]), so both bounds are shown. A
p-value below what the resamples or permutations can resolve reads `< 0.001`.
"""

P_FLOOR = 0.001


def _present(value) -> bool:
    return value not in ("", None) and value == value  # NaN != NaN


def interval_text(low, high, sign: str = "", digits: int = 2) -> str:
    """`[low, high]`; "" when either bound is missing (results written before intervals)."""
    if not (_present(low) and _present(high)):
        return ""
    return f"[{float(low):{sign}.{digits}f}, {float(high):{sign}.{digits}f}]"


def p_text(p) -> str:
    """A p-value or share of resamples: `< 0.001` below the floor, "–" where none applies (medr)."""
    if not _present(p):
        return "–"
    return f"< {P_FLOOR}" if float(p) < P_FLOOR else f"{float(p):.3f}"
