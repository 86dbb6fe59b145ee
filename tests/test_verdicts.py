"""The claims tables' rows and verdicts: one helper, each table's own words."""

from robust_saliency import stats, verdicts


def test_each_table_says_holds_and_fails_in_its_own_words():
    for words, holds, fails in ((verdicts.PAPER, "reproduced", "not reproduced"),
                                (verdicts.EXPLANATIONS, "agrees", "disagrees"),
                                (verdicts.METHODS, "yes", "no")):
        assert words.verdict(True) == holds and words.verdict(False) == fails
        assert words.verdict(None) == verdicts.NOT_JUDGED
        assert words.verdict(stats.INCONCLUSIVE) == stats.INCONCLUSIVE
        assert words.verdict("small_net leads") == "small_net leads"  # a verdict as it stands


def test_a_row_has_the_tables_columns_and_its_rule_the_same_words():
    row = verdicts.row("alignment rises", "yes", "0.9", "rule", False, words=verdicts.METHODS)
    assert tuple(row) == verdicts.COLUMNS and row["verdict"] == "no"
    rule = verdicts.trend_rule(0.5, words=verdicts.EXPLANATIONS)
    assert rule.startswith("agrees if Spearman >= 0.5") and "disagrees if" in rule
    assert stats.INCONCLUSIVE in rule and "reproduced" not in rule
