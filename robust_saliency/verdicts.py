"""The rows of every claims table and their verdicts, in one vocabulary.

A rule judges a claim into `holds`: True (it holds), False (it fails), None (not judged) or
stats.INCONCLUSIVE (the uncertainty admits both answers); any other string is a verdict as it
stands (the methods comparison names its leading method). Every table (the paper's claims,
the explanation metrics', the linearity conjecture's, the comparison of methods) builds its
rows with `row`, in its own `Words` for a verdict, and states its 'rises with' rule with
`trend_rule` in the same words.
"""

import dataclasses

from robust_saliency.stats import CONFIDENCE, INCONCLUSIVE, TREND_THRESHOLD

COLUMNS = ("claim", "paper", "measured", "rule", "verdict")
NOT_JUDGED = "n/a"


@dataclasses.dataclass(frozen=True)
class Words:
    """A table's words for a claim that holds and one that fails, in its verdicts and rules."""

    holds: str
    fails: str

    def verdict(self, holds):
        """The verdict of `holds` (True, False, None, INCONCLUSIVE or a verdict string)."""
        return {True: self.holds, False: self.fails, None: NOT_JUDGED}.get(holds, holds)


PAPER = Words("reproduced", "not reproduced")  # the paper's claims, the linearity conjecture
EXPLANATIONS = Words("agrees", "disagrees")  # the explanation metrics against alignment
METHODS = Words("yes", "no")  # the open questions across methods


def row(claim, paper, measured, rule, holds, words=PAPER):
    """One row of a claims table (COLUMNS), its verdict `holds` in `words`."""
    return {"claim": claim, "paper": paper, "measured": measured, "rule": rule,
            "verdict": words.verdict(holds)}


def trend_rule(threshold=TREND_THRESHOLD, words=PAPER):
    """The rule of stats.trend_verdict in `words`, for the claims tables."""
    return (f"{words.holds} if Spearman >= {threshold} and its {CONFIDENCE:.0%} bootstrap "
            f"interval (over models) lies above 0; {words.fails} if the interval lies below "
            f"{threshold}; else {INCONCLUSIVE}")
