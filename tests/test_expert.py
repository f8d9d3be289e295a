"""The scripted expert (on the real encyclopedia and real train questions) and the demonstrations file."""

import gzip
import json
import random
import warnings
from dataclasses import fields

import pytest

from webqa.demos import (
    append_demonstration,
    generate_demonstrations,
    mixed_questions,
    read_demonstrations,
    repair,
)
from webqa.env import Browser, check_citations, parse, replay
from webqa.policy.expert import Expert, label
from webqa.policy.prompts import POLICY_BROWSER
from webqa.scoring import is_correct, is_supported
from webqa.types import Demonstration

SUPER_BOWL = "Which NFL team represented the AFC at Super Bowl 50?"
BRONCOS = ["Denver Broncos"]


@pytest.fixture(scope="module")
def questions():
    """20 real train questions: 15 SQuAD, 5 open-domain (TriviaQA, NQ), each with evidence in the corpus."""
    groups = mixed_questions("train", seed=0)
    return groups["squad"][:15] + groups["open-domain"][:5]


@pytest.fixture(scope="module")
def demos(corpus, questions):
    expert = Expert(corpus)
    made = [expert.demonstrate(q["question"], q["answers"], random.Random(f"0:{q['id']}")) for q in questions]
    return [(q, demo) for q, demo in zip(questions, made) if demo is not None]


# --- demonstrations -------------------------------------------------------------------


def test_the_expert_answers_most_train_questions(questions, demos):
    # Measured: 13 of these 20 (12 of 15 SQuAD, 1 of 5 open-domain; over 60 of each: SQuAD 80%,
    # open-domain 25%: the expert gives up rather than quote a page that only mentions the answer).
    assert len(demos) >= 0.5 * len(questions)
    assert sum(q["dataset"] == "squad" for q, _ in demos) >= 9


def test_every_demonstration_replays_identically(corpus, demos):
    for _, demo in demos:
        episode = demo.episode
        again = replay(episode, Browser(corpus, POLICY_BROWSER))
        assert [s.observation for s in again.steps] == [s.observation for s in episode.steps]
        assert again.quotes == episode.quotes
        assert again.final_observation == episode.final_observation
        assert again.end == "Answer"


def test_demonstrations_use_only_valid_commands_without_errors(demos):
    for _, demo in demos:
        for step in demo.episode.steps:
            parse(step.action)  # raises on anything that is not a browser command
            assert step.error is None, (step.action, step.error)
        assert demo.episode.actions[-1] == "End: Answer"
        assert len(demo.episode.actions) <= POLICY_BROWSER.max_actions


def test_answers_are_correct_cited_short_and_supported(demos):
    for question, demo in demos:
        answer, quotes = demo.answer, demo.episode.quotes
        assert is_correct(answer, question["answers"]), answer
        assert check_citations(answer, quotes).valid, answer
        assert len(answer.split()) <= 30, answer
        assert is_supported([q.text for q in quotes], question["answers"])
        assert all(len(q.text) <= 300 for q in quotes)


def test_generation_is_seeded(corpus, questions):
    question = questions[0]
    first, second = (Expert(corpus).demonstrate(question["question"], question["answers"], random.Random(7))
                     for _ in range(2))
    assert first is not None and second is not None
    assert first.episode.actions == second.episode.actions and first.answer == second.answer


def test_the_expert_gives_up_rather_than_answer_wrong(corpus):
    assert Expert(corpus).demonstrate(SUPER_BOWL, ["Zzyzx Qwertyuiop"], random.Random(0)) is None


# --- labels for states the expert did not produce ----------------------------------------


@pytest.fixture()
def browser(corpus):
    browser = Browser(corpus, POLICY_BROWSER)
    browser.reset(SUPER_BOWL)
    return browser


def holds_answer(corpus, browser, link_id):
    from webqa.env.render import render

    page = render(corpus.fetch(browser.page.links[link_id].url))
    return is_supported([" ".join(page.plain_lines)], BRONCOS)


def test_label_starts_with_a_search(browser):
    action = label(browser, SUPER_BOWL, BRONCOS)
    assert action.startswith("Search ")


def test_label_on_results_clicks_a_page_with_the_answer(corpus, browser):
    browser.step(f"Search {SUPER_BOWL}")
    action = label(browser, SUPER_BOWL, BRONCOS)
    assert action.startswith("Clicked on link ")
    assert holds_answer(corpus, browser, int(action.split()[-1]))


def test_label_on_a_wrong_page_goes_back(corpus, browser):
    browser.step(f"Search {SUPER_BOWL}")
    wrong = next(i for i in range(len(browser.page.links)) if not holds_answer(corpus, browser, i))
    browser.step(f"Clicked on link {wrong}")
    assert label(browser, SUPER_BOWL, BRONCOS) == "Back"


def test_label_after_quoting_the_answer_ends(browser):
    while not browser.quotes:
        action = label(browser, SUPER_BOWL, BRONCOS)
        assert action is not None and not action.startswith("End")
        browser.step(action)
    assert is_supported([q.text for q in browser.quotes], BRONCOS)
    assert label(browser, SUPER_BOWL, BRONCOS) == "End: Answer"


def test_label_says_none_when_no_search_finds_the_answer(browser):
    actions = []
    while (action := label(browser, SUPER_BOWL, ["Zzyzx Qwertyuiop"])) is not None:
        actions.append(action)
        browser.step(action)
    assert actions and all(a.startswith("Search ") for a in actions)  # reformulated, never clicked blindly


# --- the demonstrations file --------------------------------------------------------------


@pytest.fixture(scope="module")
def some_demos(demos):
    return [Demonstration(**{f.name: getattr(d.episode, f.name) for f in fields(d.episode)}, producer="expert",
                          created="2026-01-01T00:00:00+00:00", gold_answers=q["answers"]) for q, d in demos[:3]]


@pytest.mark.parametrize("name", ["demos.jsonl", "demos.jsonl.gz"])
def test_demonstrations_round_trip(tmp_path, some_demos, name):
    path = tmp_path / "sub" / name
    for demo in some_demos:
        append_demonstration(path, demo)
    assert read_demonstrations(path) == some_demos
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as lines:  # many members, still one gzip file
            assert [json.loads(line)["question"] for line in lines] == [d.question for d in some_demos]


@pytest.mark.parametrize("name", ["demos.jsonl", "demos.jsonl.gz"])
def test_a_cut_off_last_line_is_skipped_then_repaired(tmp_path, some_demos, name):
    path = tmp_path / name
    for demo in some_demos[:2]:
        append_demonstration(path, demo)
    whole = path.stat().st_size
    with open(path, "r+b") as out:  # a writer killed in the middle of the second record
        out.truncate(whole - 25)
    with pytest.warns(UserWarning, match="cut off"):
        assert read_demonstrations(path) == some_demos[:1]
    assert repair(path) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_demonstrations(path) == some_demos[:1]
    append_demonstration(path, some_demos[2])
    assert read_demonstrations(path) == [some_demos[0], some_demos[2]]


def test_a_plain_file_cut_off_after_this_process_appended_is_repaired_by_the_next_append(tmp_path, some_demos):
    """A second run in the same process (a resumed evaluation, say) appends after another writer was killed."""
    path = tmp_path / "demos.jsonl"
    for demo in some_demos[:2]:
        append_demonstration(path, demo)
    with open(path, "r+b") as out:  # killed in the middle of the second record
        out.truncate(path.stat().st_size - 25)
    append_demonstration(path, some_demos[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_demonstrations(path) == [some_demos[0], some_demos[2]]
    with open(path, "r+b") as out:  # a whole last record that lost only its newline
        out.truncate(path.stat().st_size - 1)
    append_demonstration(path, some_demos[1])
    assert read_demonstrations(path) == [some_demos[0], some_demos[2], some_demos[1]]


def test_a_bad_line_in_the_middle_names_its_line(tmp_path, some_demos):
    path = tmp_path / "demos.jsonl"
    append_demonstration(path, some_demos[0])
    with open(path, "a", encoding="utf-8") as out:
        out.write('{"question": "no such field", "colour": 1}\n')
    append_demonstration(path, some_demos[1])
    with pytest.raises(ValueError, match="line 2"):
        read_demonstrations(path)


def test_the_file_loads_with_datasets(tmp_path, some_demos):
    import datasets

    path = tmp_path / "demos.jsonl.gz"
    for demo in some_demos:
        append_demonstration(path, demo)
    table = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert table.num_rows == len(some_demos)
    assert table[0]["question"] == some_demos[0].question
    assert table[0]["steps"][0]["action"] == some_demos[0].steps[0].action


def test_generation_appends_and_resumes(tmp_path, corpus, questions):
    path = tmp_path / "expert.jsonl.gz"
    squad = [q for q in questions if q["dataset"] == "squad"]
    first = generate_demonstrations(squad, path, n=2, seed=0, backend=corpus, progress=False)
    assert first["succeeded"] == first["in file"] == 2
    again = generate_demonstrations(squad, path, n=3, seed=0, backend=corpus, progress=False)
    assert again["in file"] == 3 and again["succeeded"] == 1
    demos = read_demonstrations(path)
    assert len({d.settings["question_id"] for d in demos}) == 3
    assert all(d.producer == "expert" and d.gold_answers and d.created and d.answer for d in demos)
    assert demos[0].settings["seed"] == 0 and demos[0].settings["window_lines"] == POLICY_BROWSER.window_lines
    # Replays need the ranking the clicks were made on; files from before it was recorded used "pages".
    from webqa.env.local import recorded_ranking

    assert {recorded_ranking(d.settings) for d in demos} == {corpus.ranking} == {"passages"}
    assert recorded_ranking(Demonstration(question="q").settings) == "pages"
    assert all(step.by == "expert" for d in demos for step in d.steps) and demos[0].answered_by == "expert"
