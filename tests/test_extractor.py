"""Answers extracted from the quotes: clause runs, the reader's choice, and episodes that answer with it."""

import pytest
import torch

from webqa.loading import SHIPPED_POLICY
from webqa.policy.extractor import CLAUSE_BREAK, MAX_WORDS, Run, clause_runs, extract_answer, run_answer
from webqa.policy.reader import load_reader
from webqa.scoring import is_correct
from webqa.types import Quote

# A long sentence of the encyclopedia, whose answer ("Presbyterian") sits in a late clause.
SCHOOLS = Quote(
    "Private school", "https://en.wikipedia.org/wiki/Private_school",
    "Private schools are often Anglican, such as King's College and Diocesan School for Girls in Auckland, "
    "St Paul's Collegiate School in Hamilton, St Peter's School in Cambridge, Samuel Marsden Collegiate School "
    "in Wellington, and Christ's College and St Margaret's College in Christchurch; or Presbyterian, such as "
    "Saint Kentigern College and St Cuthbert's College in Auckland, Scots College and Queen Margaret College "
    "in Wellington, and St Andrew's College and Rangi Ruru Girls' School in Christchurch.")
MERGER = Quote("American Broadcasting Company", "https://en.wikipedia.org/wiki/American_Broadcasting_Company",
               "The merger between ABC and Capital Cities received federal approval on September 5, 1985. "
               "It was finalized on January 3, 1986.")


@pytest.fixture(scope="module")
def reader():
    loaded = load_reader(SHIPPED_POLICY)
    assert loaded is not None
    return loaded


def test_runs_are_whole_clauses_within_one_sentence_and_short_enough():
    runs = clause_runs([MERGER, SCHOOLS])
    assert {run.quote for run in runs} == {1, 2}
    merger = [run.text for run in runs if run.quote == 1]
    # A comma inside a date does not end a clause; a sentence end does.
    assert "The merger between ABC and Capital Cities received federal approval on September 5, 1985." in merger
    assert not any("1985" in text and "1986" in text for text in merger)
    for run in runs:
        assert run.text in (MERGER, SCHOOLS)[run.quote - 1].text
    # Longer than MAX_WORDS only as a single clause, with no clause break inside.
    long = [run for run in runs if len(run.text.split()) > MAX_WORDS]
    assert all(not CLAUSE_BREAK.search(run.text.rstrip(" ,;:")) for run in long)
    assert len(SCHOOLS.text.split()) > MAX_WORDS and SCHOOLS.text not in [run.text for run in runs]
    assert clause_runs([]) == []


def test_a_run_reads_as_a_cited_answer():
    assert run_answer(Run(2, "or Presbyterian, such as Saint Kentigern College;")) == (
        "Presbyterian, such as Saint Kentigern College [2].")
    assert run_answer(Run(1, "The merger received approval [3].")) == "The merger received approval [1]."


def test_the_reader_picks_the_clauses_that_answer_where_the_start_of_the_quote_does_not(reader):
    question = "What denomination is associated with Saint Kentigern College?"
    answer = extract_answer(reader, question, [SCHOOLS])
    assert is_correct(answer, ["Presbyterian"]) and answer.endswith("[1].")
    assert len(answer.split()) <= MAX_WORDS + 1
    # Copying the quote from its start, up to as many words, misses it.
    assert not is_correct(" ".join(SCHOOLS.text.split()[: MAX_WORDS]), ["Presbyterian"])
    answer = extract_answer(reader, "When did the merger between ABC and Capital Cities gain federal approval?",
                            [SCHOOLS, MERGER])
    assert is_correct(answer, ["September 5, 1985"]) and answer.endswith("[2].")
    assert extract_answer(reader, question, []) is None


def test_sampled_answers_are_runs_drawn_from_the_scores(reader):
    question = "What denomination is associated with Saint Kentigern College?"
    runs = {run_answer(run) for run in clause_runs([SCHOOLS])}
    drawn = {extract_answer(reader, question, [SCHOOLS], 2.0, torch.Generator().manual_seed(seed)) for seed in range(12)}
    assert drawn <= runs and len(drawn) > 1
