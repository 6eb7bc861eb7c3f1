"""Champion/challenger: a challenger takes over only when clearly better on the same window.

The selection window is validation; out-of-time figures are reported, never used to choose.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(challenger_auc: float | None, champion_auc: float | None, margin: float) -> Decision:
    """Promote when there is no champion, or when the challenger beats it by `margin` AUC."""
    if champion_auc is None:
        return Decision(True, "no champion yet: the first model becomes champion")
    if challenger_auc is None:
        return Decision(False, "challenger has no validation ROC-AUC (one class only)")
    gain = challenger_auc - champion_auc
    if gain >= margin:
        return Decision(
            True,
            f"validation ROC-AUC {challenger_auc:.4f} beats champion {champion_auc:.4f} "
            f"by {gain:+.4f} >= margin {margin}",
        )
    return Decision(
        False,
        f"validation ROC-AUC {challenger_auc:.4f} vs champion {champion_auc:.4f}: "
        f"gain {gain:+.4f} < margin {margin}",
    )
