"""What kind of answer a question asks for.

Teachers ask a few kinds of question, and each wants a different answer: "what
works for PLAC pupils?" wants the points the guidance makes, from several
passages; "who counts as previously looked-after?" wants the defining
sentence; "what does Surrey still need to improve?" wants the weaknesses, not
the strengths the same report lists first; "how long does an EHC assessment
take?" wants a sentence with a time in it.

Rules over the question's own words, not a model: the kinds are few, their
wording is formulaic ("what works", "who counts as", "need to improve"), and
a rule that misfires falls back to the plain factual answer, which is what
every question got before. Matching is on lower-cased text with common
misspellings folded (``_FOLD``), so "waht works" and "imporve" still count.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

WHAT_WORKS = "what-works"
DEFINITION = "definition"
NEEDS_IMPROVE = "needs-improve"
STRENGTHS = "strengths"
WHEN = "when"
HOW_LONG = "how-long"
WHO = "who"
FACTUAL = "factual"

#: Misspellings seen in teachers' questions, folded before matching.
_FOLD = {
    "waht": "what", "wat": "what", "wht": "what", "whta": "what",
    "wokrs": "works", "wroks": "works", "work's": "works",
    "imporve": "improve", "improove": "improve", "improvment": "improvement", "improvments": "improvements",
    "stratergies": "strategies", "startegies": "strategies", "strategys": "strategies",
    "defintion": "definition", "definiton": "definition",
    "eligable": "eligible", "elegible": "eligible",
}

_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (kind, re.compile(p)) for kind, p in (
        # Order matters: the first kind that matches wins.
        (NEEDS_IMPROVE, r"\b(needs? to (get )?(improve|better|develop|change)|still (needs?|has) to|"
                        r"areas? (for|of|to) (improvement|development|improve)|improvements? (are |is )?(needed|required)|"
                        r"weakness(es)?|shortcomings?|requires? improvement|not (yet )?good enough|"
                        r"what (is|was|are|were) (poor|weak|not working|inadequate)|what (went|is going) wrong|"
                        r"(should|must|could) (they |it |the (la|council|authority) )?(do )?better|what to improve|"
                        r"(criticis(ed|m)|concerns?) (about|with|in|raised))\b"),
        # "what are good ways to ..." asks what works, not what is good somewhere.
        (STRENGTHS, r"\b(strengths?|what (is|was|are|were) (good|strong|effective|working( well)?)"
                    r"(?! (ways?|strateg|approach|ideas|things|tips|practice for|interventions|examples))|"
                    r"(doing|done|do|did|works?|working) well|praised|positives?|good practice (in|at))\b"),
        (DEFINITION, r"(^|\b)(who (counts|qualifies|is eligible|is classed|is defined|is considered)|"
                     r"what counts as|(what|who) (is|are) (classed|defined|considered) as|definition of|"
                     r"\bdefine\b|what (is|are) meant by|what does .{1,60} mean\b|meaning of|"
                     r"who (is|are) (a |an |the )?(plac|lac|cla|cic|uasc|care leavers?|children in need|"
                     r"previously looked|looked.after|young carers?)|eligib(le|ility) for)"),
        (HOW_LONG, r"\b(how long|how many (days|weeks|months|years|school days|hours)|how soon|how quickly|"
                   r"within (how|what)|timescales?|time ?limits?|time ?frames?|deadline for|"
                   r"how far in advance|how often)\b"),
        (WHEN, r"^(when|by when|at what (age|point|stage))\b|\bwhat (date|age)\b|\bby what date\b"),
        # A question that opens with "who" asks for a person or role even when it
        # names a strategy ("Who is leading the session on collaboration as a strategy ...?").
        (WHO, r"^(who|which (person|people|role|roles|staff|professional|body|organisation))\b|"
              r"\bwho (is|are) responsible\b|\bwhose (job|role|responsibility)\b"),
        (WHAT_WORKS, r"\b(what (really |actually )?works|what (can|could|should|must|do|might) (the |a |our |my )?(we|i|schools?|"
                     r"teachers?|staff|leaders?|senco|sencos|the school|a school|dts?|designated teachers?|vsh|"
                     r"parents?|carers?|you) (do|use|try|put in place|offer|provide)|"
                     r"how (can|could|should|do|might|would|to) ([\w+'-]+ ){0,3}(best )?(support|help|improve|reduce|"
                     r"raise|close|engage|promote|use|spend|manage|avoid|prevent|tackle)|"
                     r"how to (support|help|improve|reduce|raise|close|engage|promote|use|spend|manage|avoid|prevent|tackle)|"
                     r"ways (to|of)|strateg(y|ies)|approach(es)?|best practice|tips|ideas for|interventions?|"
                     r"what helps|what (does|do) the (evidence|research|guidance) (say|suggest|recommend)|"
                     r"evidence (for|on|says|base)|recommend(ed|ations?)?|effective (ways|practice|use)|"
                     r"good (ways|use|practice)|any examples)\b"),
    )
)


@dataclass(frozen=True)
class Intent:
    """The kind of answer a question asks for (``kind``) and the words that showed it."""

    kind: str = FACTUAL
    cue: str = ""

    @property
    def wants_list(self) -> bool:
        """Answered with several distinct points (from distinct passages where possible)."""
        return self.kind in (WHAT_WORKS, NEEDS_IMPROVE, STRENGTHS)


def normalise(question: str) -> str:
    """Lower case, typographic quotes folded, known misspellings fixed, spaces collapsed."""
    text = question.lower().replace("’", "'").replace("‘", "'")
    return " ".join(_FOLD.get(w, w) for w in re.findall(r"[\w'+-]+|[^\w\s]", text))


def detect(question: str) -> Intent:
    """The :class:`Intent` of ``question`` (``factual`` when no rule matches)."""
    text = normalise(question)
    for kind, pattern in _PATTERNS:
        m = pattern.search(text)
        if m:
            return Intent(kind, m.group(0).strip())
    return Intent()
