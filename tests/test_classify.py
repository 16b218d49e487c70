"""Stage classify: the bundled topics against real wording, the context rule and its guards.

Expected topics were decided by reading the texts (quoted below or kept in tests/fixtures/texts/, see
SOURCES.md there for attribution), not by running the classifier.
"""

from __future__ import annotations

import gzip
import re
import tomllib
from functools import lru_cache
from pathlib import Path

import pytest

from watchdog import classify as classify_module
from watchdog.classify import CompiledTopics, classify, compile_topics
from watchdog.diff import diff_texts, split_sentences
from watchdog.errors import ConfigError
from watchdog.extract import normalise
from watchdog.models import Classification, TextDiff, Topic

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ROOT / "tests" / "fixtures" / "texts"
TOPIC_IDS = ("ai-training", "eu-pause", "legal-basis", "opt-out", "public-data")
_LINK = re.compile(r"!?\[((?:\\.|[^\]\\])*)\]\((?:[^()\s]|\([^)]*\))*\)")


def corpus_text(relative: str) -> str:
    """A corpus version in the extractor's canonical shape: link targets dropped, normalised quotes.

    The corpus Markdown is one block per line already; what the extractor does on top and matters here
    is dropping link URLs (`[text](url)` -> text), table-cell breaks and the character normalisation.
    """
    return canonical_markdown(gzip.decompress((TEXTS / f"{relative}.md.gz").read_bytes()).decode("utf-8"))


def canonical_markdown(markdown: str) -> str:
    """Corpus Markdown in the extractor's canonical shape (see corpus_text)."""
    return normalise(_LINK.sub(r"\1", markdown.replace("<br>", " ")))


def bundled_topics() -> tuple[Topic, ...]:
    data = tomllib.loads((ROOT / "config" / "topics.toml").read_text(encoding="utf-8"))
    return tuple(Topic(t["id"], t["title"], t["severity"], tuple(t["patterns"])) for t in data["topics"])


@lru_cache(maxsize=1)
def compiled() -> CompiledTopics:
    return compile_topics(bundled_topics(), source="config/topics.toml")


def topics_of(before: str, after: str, *, only: list[str] | None = None) -> Classification:
    return classify(diff_texts(before, after), compiled(), only=only)


# --------------------------------------------------------------------------- compile


def test_bundled_topics_compile_with_the_contract_ids() -> None:
    topics = compiled()
    assert sorted(c.topic.id for c in topics.topics) == sorted(TOPIC_IDS)
    assert [c.topic.severity for c in topics.topics] == sorted(
        (c.topic.severity for c in topics.topics), key=lambda s: {"high": 0, "medium": 1, "low": 2}[s]
    )
    assert all(c.regexes and c.regexes[0].flags & re.IGNORECASE for c in topics.topics)


@pytest.mark.parametrize(
    ("topic", "key", "words"),
    [
        pytest.param(
            Topic("x", "X", "high", ("(unclosed",)), "topics.x.patterns[0]", "invalid", id="bad-regex"
        ),
        pytest.param(
            Topic("x", "X", "high", ("a", "b?")), "topics.x.patterns[1]", "empty", id="matches-empty"
        ),
        pytest.param(Topic("x", "X", "urgent", ("a",)), "topics.x.severity", "high", id="bad-severity"),  # type: ignore[arg-type]
        pytest.param(Topic("x", "X", "low", ()), "topics.x.patterns", "at least one", id="no-patterns"),
    ],
)
def test_compile_reports_each_problem_with_its_key(topic: Topic, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_topics([Topic("ok", "Ok", "low", ("fine",)), topic], source="my.toml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.key) == ("my.toml", key)
    assert words in problem.message


def test_compile_collects_every_problem_and_duplicates() -> None:
    bad = [Topic("x", "X", "high", ("(",)), Topic("x", "X", "high", ("[",))]
    with pytest.raises(ConfigError) as caught:
        compile_topics(bad)
    assert [p.key for p in caught.value.problems] == [
        "topics.x.patterns[0]",
        "topics.x",
        "topics.x.patterns[0]",
    ]


# --------------------------------------------------------------------------- the table

# (before, after, expected topics). Sentences quoted from the corpus are marked with their source.
CASES = [
    pytest.param(
        "We use your information to train AI models on the basis of consent.",
        "We use your information to train AI models on the basis of legitimate interests.",
        {"ai-training", "legal-basis"},
        id="legal-basis-switch-in-an-ai-sentence-touches-both",
    ),
    pytest.param(
        # instagram-privacy-policy-en-eu 2023-12-27 -> 2024-08-16, the June 2024 banner
        "Privacy Policy\n\nHow to manage the info we use\n",
        "Privacy Policy\n\nBased on feedback from regulators, we're delaying our change to the use of your "
        "information to develop and improve AI at Meta. We've reflected this change in our Privacy Policy "
        "update on June 26, 2024. We'll let you know before we start using your information, and how you "
        "can exercise your right to object. View our previous policy.\n\nHow to manage the info we use\n",
        {"eu-pause", "ai-training", "opt-out"},
        id="en-june-2024-delay-banner",
    ),
    pytest.param(
        # meta-privacy-policy-fr-fr 2024-05-21 -> 2024-06-26, line 6
        "Nous mettons à jour la Politique de confidentialité en incluant la manière dont nous utilisons vos "
        "informations pour l'IA chez Meta. En savoir plus sur votre droit d'opposition pour connaître la "
        "manière dont vos informations sont utilisées pour ces finalités. Ces mises à jour entreront en "
        "vigueur le 26 juin 2024. Lisez la nouvelle politique.\n",
        "À l'heure actuelle, nous reportons la modification de notre utilisation de vos informations afin de "
        "développer et d'améliorer l'IA chez Meta. Nous vous tiendrons au courant avant de commencer à "
        "utiliser vos informations. Nous vous expliquerons également comment vous pouvez exercer votre droit "
        "d'opposition. Nous avons mis à jour notre Politique de confidentialité le 26 juin 2024. Consulter "
        "notre politique précédente.\n",
        {"eu-pause", "ai-training", "opt-out"},
        id="fr-nous-reportons-banner",
    ),
    pytest.param(
        # meta-privacy-policy-fr-fr 2023-12-27 -> 2024-05-21, line 6
        "Nous avons mis à jour notre politique de confidentialité le 27 décembre 2023. Consulter notre "
        "politique précédente.\n",
        "Nous mettons à jour la Politique de confidentialité en incluant la manière dont nous utilisons vos "
        "informations pour l'IA chez Meta. En savoir plus sur votre droit d'opposition pour connaître la "
        "manière dont vos informations sont utilisées pour ces finalités. Ces mises à jour entreront en "
        "vigueur le 26 juin 2024. Lisez la nouvelle politique.\n",
        {"ai-training", "opt-out"},
        id="fr-may-2024-announcement-droit-d-opposition",
    ),
    pytest.param(
        # instagram-privacy-policy-en-eu 2025-05-27 banner (the resumption on legitimate interests)
        "How to manage the info we use\n",
        "How we use info for AI at Meta We're always improving AI at Meta. To do this, we want you to know "
        "that we'll use public information such as public posts and comments from accounts of people aged "
        "18 or older and your interactions with AI at Meta features.\n\nHow to manage the info we use\n",
        {"ai-training", "public-data"},
        id="en-2025-public-posts-for-ai",
    ),
    pytest.param(
        "Some text.\n",
        "Some text.\n\nWe'll use this information on the basis of legitimate interests to develop and "
        "improve generative AI models for AI at Meta. You have the right to object to the use of your "
        "information for these purposes.\n",
        {"ai-training", "legal-basis", "opt-out"},
        id="en-2025-legitimate-interests-and-right-to-object",
    ),
    pytest.param(
        "Meta told us about its plans.\n",
        "Meta told us about its plans. Meta has agreed to pause its plans to train large language models on "
        "public posts of adults in the EU/EEA.\n",
        {"eu-pause", "ai-training", "public-data"},
        id="regulator-style-pause-statement",
    ),
    pytest.param(
        "La CNIL suit le dossier.\n",
        "La CNIL suit le dossier. Meta a suspendu l'entraînement de ses modèles d'IA sur les contenus "
        "publics des utilisateurs européens.\n",
        {"eu-pause", "ai-training", "public-data"},
        id="regulator-style-french-suspension",
    ),
    pytest.param(
        "Meta plans to begin training its models on 27 May 2025.\n",
        "Meta plans to begin training its models on 27 June 2025.\n",
        {"eu-pause", "ai-training"},
        id="resumption-date-moved-context-counts",
    ),
    pytest.param(
        "You can change your settings.\n",
        "You can change your settings. If we use your activity on our Products to tailor these ads, you can "
        "opt out of this type of use.\n",
        {"opt-out"},
        id="ads-opt-out-only",
    ),
    pytest.param(
        "Where we rely on your consent, you can contact us.\n",
        "Where we rely on your consent, you can withdraw your consent at any time.\n",
        {"opt-out", "legal-basis"},
        id="withdraw-consent",
    ),
    pytest.param(
        "Vous pouvez nous contacter.\n",
        "Vous pouvez vous opposer au traitement fondé sur nos intérêts légitimes via un formulaire "
        "d'opposition.\n",
        {"opt-out", "legal-basis"},
        id="french-s-opposer-interets-legitimes",
    ),
    # ---- negatives
    pytest.param(
        "Cookies that keep you logged in expire after 90 days.\n",
        "Cookies that keep you logged in expire after 365 days.\n",
        set(),
        id="cookie-retention-period-touches-nothing",
    ),
    pytest.param(
        "We rely on legitimate interests  to train AI.\n",
        "We rely on legitimate interests to train AI.\n",
        set(),
        id="whitespace-only-touches-nothing",
    ),
    pytest.param(
        # meta-privacy-policy-en-eu: a full stop added to a long legal-basis sentence
        "When we process your information as necessary to pursue our legitimate interests or those of a "
        "third party, you have the right to object to, and seek restriction of, such processing\n",
        "When we process your information as necessary to pursue our legitimate interests or those of a "
        "third party, you have the right to object to, and seek restriction of, such processing.\n",
        set(),
        id="punctuation-only-in-long-legal-sentence-touches-nothing",
    ),
    pytest.param(
        # meta-privacy-policy-fr-fr 2024-05-21 -> 2024-06-26: "entités" -> "Entités" in a row of the
        # legitimate-interests table
        "Dans notre intérêt de faire la promotion des Produits des entités Meta.\n",
        "Dans notre intérêt de faire la promotion des Produits des Entités Meta.\n",
        set(),
        id="case-only-touches-nothing",
    ),
    pytest.param(
        "Effective April 7, 2025\n", "Effective May 27, 2025\n", set(), id="effective-date-touches-nothing"
    ),
    pytest.param(
        "We process information as necessary for the public interest, such as conducting research.\n",
        "We process information as necessary for the public interest, such as conducting research or "
        "promoting safety.\n",
        set(),
        id="public-interest-is-neither-public-data-nor-a-watched-basis",
    ),
    pytest.param(
        "Apps can access your non-public information.\n",
        "Apps you logged into can access your non-public information.\n",
        set(),
        id="non-public-is-not-public-data",
    ),
    pytest.param(
        "Nous sommes en train de mettre à jour la politique.\n",
        "Nous sommes en train de mettre à jour les paramètres.\n",
        set(),
        id="french-en-train-de-is-not-training",
    ),
    pytest.param(
        "J'ai lu les conditions.\n", "J'ai accepté les conditions.\n", set(), id="french-j-ai-is-not-AI"
    ),
    pytest.param(
        "We will respond without undue delay.\n",
        "We will respond without undue delay and within one month.\n",
        set(),
        id="undue-delay-is-not-a-pause",
    ),
]


@pytest.mark.parametrize(("before", "after", "expected"), CASES)
def test_classification_table(before: str, after: str, expected: set[str]) -> None:
    result = topics_of(before, after)
    assert set(result.topics) == expected
    assert {m.topic_id for m in result.matches} == expected


# --------------------------------------------------------------------------- the context rule


def _run_on_cell(change_at_end: bool) -> tuple[str, str]:
    """A table cell of ~1,500 characters: legal-basis words at its start, an edit at one end."""
    filler = " ".join(["We process information about your device and the apps you use"] * 20)
    head = "In our interest to secure our platform, we rely on legitimate interests: "
    if change_at_end:
        return f"| {head}{filler} and more |\n", f"| {head}{filler} and others |\n"
    return f"| {head}{filler} and more |\n", f"| {head.replace('secure', 'protect')}{filler} and more |\n"


@pytest.mark.parametrize(
    ("change_at_end", "expected"),
    [
        pytest.param(True, set(), id="far-edit-in-run-on-cell-borrows-nothing"),
        pytest.param(False, {"legal-basis"}, id="near-edit-in-same-cell-counts"),
    ],
)
def test_context_window_bounds_run_on_sentences(change_at_end: bool, expected: set[str]) -> None:
    before, after = _run_on_cell(change_at_end)
    assert set(topics_of(before, after).topics) == expected


def test_evidence_records_pattern_side_sentence_and_hunk() -> None:
    before = "Intro.\n\nWe rely on consent to train AI.\n"
    after = "Intro.\n\nWe rely on legitimate interests to train AI.\n"
    result = topics_of(before, after)
    by_topic = {(m.topic_id, m.side): m for m in result.matches}
    legal = by_topic["legal-basis", "inserted"]
    assert legal.pattern == r"\blegitimate interests?\b"
    assert legal.sentence == "We rely on legitimate interests to train AI."
    assert legal.hunk_index == 0
    assert by_topic["legal-basis", "deleted"].sentence == "We rely on consent to train AI."
    assert by_topic["ai-training", "context"].sentence == legal.sentence
    assert ("ai-training", "inserted") not in by_topic


def test_topics_ordered_by_severity_then_id_and_severity_reported() -> None:
    result = topics_of(
        "Intro.\n",
        "Intro.\n\nWe rely on legitimate interests to train AI on public posts; you may object to it.\n",
    )
    assert result.topics == ("ai-training", "opt-out", "legal-basis", "public-data")
    assert result.severity == "high"
    assert [m.topic_id for m in result.matches] == sorted(
        (m.topic_id for m in result.matches), key=result.topics.index
    )


@pytest.mark.parametrize(
    ("only", "topics", "severity"),
    [
        pytest.param(None, ("ai-training", "opt-out", "legal-basis"), "high", id="all-topics"),
        pytest.param(["legal-basis"], ("legal-basis",), "medium", id="only-legal-basis"),
        pytest.param(["eu-pause"], (), "none", id="only-untouched-topic"),
        pytest.param([], (), "none", id="empty-restriction"),
    ],
)
def test_only_restricts_to_a_targets_topics(
    only: list[str] | None, topics: tuple[str, ...], severity: str
) -> None:
    result = topics_of(
        "Text.\n", "Text.\n\nWe rely on legitimate interests to train AI. You may object to it.\n", only=only
    )
    assert (result.topics, result.severity) == (topics, severity)


def test_nothing_changed_is_severity_none() -> None:
    result = classify(TextDiff(hunks=(), inserted_chars=0, deleted_chars=0), compiled())
    assert result == Classification(topics=(), matches=(), severity="none")


# --------------------------------------------------------------------------- real versions


@lru_cache(maxsize=8)
def real(before: str, after: str) -> tuple[TextDiff, Classification]:
    diff = diff_texts(corpus_text(before), corpus_text(after))
    return diff, classify(diff, compiled())


REAL = [
    pytest.param(
        "series/facebook-privacy-policy-en/2025-04-23T12-31-08Z",
        "series/facebook-privacy-policy-en/2025-05-28T00-30-56Z",
        # New "AI at Meta" rows in the legitimate-interests table ("In our interest, and in the interests
        # of users ..."), "Interactions with Meta's artificial intelligence technology", "Public content
        # you create or share", "what is public content". Nothing on objection or a pause.
        {"ai-training", "legal-basis", "public-data"},
        {"eu-pause", "opt-out"},
        id="en-2025-05-ai-at-meta-legitimate-interest-rows",
    ),
    pytest.param(
        "milestones/instagram-privacy-policy-en-eu/2023-12-27",
        "milestones/instagram-privacy-policy-en-eu/2024-08-16",
        # The "we're delaying" banner (plus a shorter capture: much else was removed).
        {"eu-pause", "ai-training", "opt-out"},
        set(),
        id="instagram-2024-delay-banner",
    ),
    pytest.param(
        "milestones/meta-privacy-policy-fr-fr/2024-05-21",
        "milestones/meta-privacy-policy-fr-fr/2024-06-26",
        # "nous reportons ... l'IA chez Meta", "droit d'opposition", new AI rows. The long table cells
        # that changed elsewhere mention "profil public" unchanged: that is no public-data change.
        {"eu-pause", "ai-training", "opt-out"},
        {"public-data"},
        id="fr-2024-06-nous-reportons",
    ),
    pytest.param(
        "milestones/meta-privacy-policy-fr-fr/2023-12-27",
        "milestones/meta-privacy-policy-fr-fr/2024-05-21",
        # The May 2024 banner: "l'IA chez Meta", "droit d'opposition"; the rest is "bien-être", "Les".
        {"ai-training", "opt-out"},
        {"eu-pause", "legal-basis", "public-data"},
        id="fr-2024-05-droit-d-opposition",
    ),
]


@pytest.mark.parametrize(("before", "after", "present", "absent"), REAL)
def test_real_version_pairs(before: str, after: str, present: set[str], absent: set[str]) -> None:
    _, result = real(before, after)
    assert present <= set(result.topics)
    assert not absent & set(result.topics)


def test_real_delay_banner_evidence_points_at_the_sentence() -> None:
    diff, result = real(
        "milestones/instagram-privacy-policy-en-eu/2023-12-27",
        "milestones/instagram-privacy-policy-en-eu/2024-08-16",
    )
    pause = [m for m in result.matches if m.topic_id == "eu-pause"]
    assert pause and all(m.side == "inserted" for m in pause)
    assert any("we're delaying our change" in m.sentence for m in pause)
    assert all(m.sentence in diff.hunks[m.hunk_index].after for m in pause)


def test_sentence_hits_are_every_match_of_every_pattern_on_real_sentences() -> None:
    """The per-sentence hits (patterns ruled out by their required literals, all of them tested in one pass
    per sentence) are exactly what searching every pattern in the sentence finds, on real policies."""
    topics = compiled()
    sentences: dict[str, None] = {}
    for path in sorted(TEXTS.rglob("*.md.gz"))[:6]:
        text = canonical_markdown(gzip.decompress(path.read_bytes()).decode("utf-8"))
        sentences.update(dict.fromkeys(text[a:b] for a, b in split_sentences(text)))
    hits = classify_module._SentenceHits(topics.topics)
    found = 0
    for sentence in sentences:
        change = classify_module._Change("inserted", sentence, 0, len(sentence), ((0, len(sentence)),))
        got = [(h.topic_id, h.pattern, h.start, h.end) for h in hits.get(change, 0, len(sentence))]
        expected = [
            (c.topic.id, regex.pattern, m.start(), m.end())
            for c in topics.topics
            for regex in c.regexes
            for m in regex.finditer(sentence)
        ]
        assert got == expected, sentence
        found += len(got)
    assert len(sentences) > 500 and found > 50, "real sentences, some of them on topic"
