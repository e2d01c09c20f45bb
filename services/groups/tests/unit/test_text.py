"""Polish text analysis: lemmas, stop words, bigrams, scrubbing."""

from __future__ import annotations

from groups.domain.text import (
    analyse,
    bigrams,
    content_lemmas,
    normalise,
    stop_words,
    submission_text,
    terms,
)


def test_inflected_forms_share_a_lemma() -> None:
    assert content_lemmas("kanalizacji") == content_lemmas("Kanalizację") == ("kanalizacja",)
    assert content_lemmas("żłobków w Gassach") == ("żłobek", "gassy")


def test_local_names_are_lemmatised_consistently() -> None:
    assert {content_lemmas(w)[0] for w in ("Jeziorka", "Jeziorki", "Jeziorce")} == {"jeziorka"}


def test_stop_words_and_formulas_are_dropped() -> None:
    assert content_lemmas("Proszę, aby w naszej wsi był chodnik.") == ("wieś", "chodnik")
    assert {"się", "proszę", "w", "że"} <= stop_words()


def test_bigrams_only_between_neighbouring_words() -> None:
    keys = terms("Miejscowy plan zagospodarowania. Szkoła w Gassach")
    assert "miejscowy plan" in keys and "plan zagospodarować" in keys
    assert "zagospodarować szkoła" not in keys  # a full stop lies between them
    assert "szkoła gassy" not in keys  # a stop word lies between them
    assert bigrams(("a", "b", "b", "c")) == ("a b", "b c")


def test_display_forms_are_kept() -> None:
    surfaces = {t.key: t.surface for t in analyse("Ścieżki rowerowej brak")}
    assert surfaces["ścieżka rowerowy"] == "ścieżki rowerowej"


def test_contact_details_never_become_terms() -> None:
    text = "Kontakt: jan.kowalski@example.com, tel. +48 601 234 567, www.example.com/x"
    assert "example" not in normalise(text) and "601" not in normalise(text)
    assert not any("kowalski" in key or "example" in key for key in terms(text))


def test_title_and_body_do_not_form_a_bigram() -> None:
    keys = terms(submission_text("Żłobek", "Budowa"))
    assert "żłobek budowa" not in keys
