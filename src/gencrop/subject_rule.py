"""Which subjects a crop keeps (and follows), and which are only the network's input.

A subject the user gives (box or mask) is a promise: the crop contains it and is drawn toward it
(:mod:`gencrop.shapes`). A subject the finder picked may be the wrong object, and keeping a wrong
object costs more than it gains; whether to keep it depends on what was found (its class) and how
sure the finder is (its score). :data:`FOUND_SUBJECT_RULE` is the rule ``gencrop crop``, the server
and ``gencrop eval --find-subjects`` apply; it was chosen on validation photos with
``benchmarks/subject_rule_study.py`` (figures in docs/model-card.md, *The rule for found subjects*).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SubjectRule", "FOUND_SUBJECT_RULE", "GIVEN_SOURCES", "keeps_subject"]

GIVEN_SOURCES = ("given", "mask")  # what the user gave; anything else was found by a finder


@dataclass(frozen=True)
class SubjectRule:
    """Keep a found subject when its class is one of ``classes`` and its finder one of ``sources``
    (``None``: any) and the finder's confidence is at least ``min_score``; ``keep_found=False`` keeps
    no found subject at all."""

    classes: frozenset[str] | None = None
    min_score: float = 0.0
    keep_found: bool = True
    sources: frozenset[str] | None = None

    def __post_init__(self):
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score is a confidence in [0, 1]; got {self.min_score}")
        for name in ("classes", "sources"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"{name} is a set of names, not the string {value!r}")
            if value is not None and not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))

    def keeps(self, source: str, cls: str | None = None, score: float | None = None) -> bool:
        """Whether a subject from ``source`` (``"given"``, ``"mask"`` or a finder's name) is kept."""
        if source in GIVEN_SOURCES:
            return True
        if not self.keep_found:
            return False
        if self.classes is not None and cls not in self.classes:
            return False
        if self.sources is not None and source not in self.sources:
            return False
        return self.min_score <= 0.0 or (score is not None and score >= self.min_score)

    def describe(self) -> str:
        """The rule in words (the study's tables and the docs)."""
        if not self.keep_found:
            return "no found subject kept"
        what = "any found subject" if self.classes is None else "found " + "/".join(sorted(self.classes))
        if self.sources is not None:
            what += " by " + "/".join(sorted(self.sources))
        return f"{what} with score >= {self.min_score:g}" if self.min_score > 0 else what


# The rule for found subjects, chosen on the 120 FCDB validation photos (benchmarks/subject_rule_study.py;
# docs/model-card.md): people and faces are kept (whatever the finder's confidence above its own
# threshold: higher thresholds only cut more people), salient regions and other objects only feed the
# network (keeping them cost IoU: 0.716 -> 0.690 on the photos without a person, detector).
FOUND_SUBJECT_RULE = SubjectRule(classes=frozenset({"person", "face"}))


def keeps_subject(source: str, cls: str | None = None, score: float | None = None) -> bool:
    """:data:`FOUND_SUBJECT_RULE` applied: a given subject always, a found one when the rule says so."""
    return FOUND_SUBJECT_RULE.keeps(source, cls, score)
