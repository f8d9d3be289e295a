"""How the policy reads an observation: the plain text, or with the question's words marked."""

import re

import pytest

from webqa.env import Browser
from webqa.policy.prompts import (
    FORMAT_FILE,
    PLAIN,
    POLICY_BROWSER,
    PromptFormat,
    action_example,
    examples_from_demonstration,
    mark_question_words,
    question_keys,
)
from webqa.policy.config import SamplingConfig
from webqa.policy.rollout import run_episodes
from webqa.types import Demonstration, Step

QUESTION = "Which river flows through the city of Vienna?"


@pytest.fixture
def vienna_page(corpus):
    browser = Browser(corpus, POLICY_BROWSER)
    browser.reset(QUESTION)
    assert browser.step("Search Vienna river").error is None
    assert browser.step("Clicked on link 0").error is None
    return browser


def sections(observation: str) -> dict[str, list[str]]:
    """The observation's lines under each ♦ heading."""
    found, heading = {}, None
    for line in observation.split("\n"):
        if line.startswith("♦"):
            heading = line.split(":")[0]
            found[heading] = []
        else:
            found[heading].append(line)
    return found


def test_question_keys_leave_out_stopwords_and_match_plurals_and_possessives():
    assert question_keys("Which river flows through the city of Vienna?") == {"river", "flow", "through", "city",
                                                                             "vienna"}
    assert question_keys("Who wrote Nabokov's novels?") == {"wrote", "nabokov", "novel"}
    assert question_keys("What is it?") == set()


def test_the_question_words_on_the_page_are_bolded_and_nothing_else_changes(vienna_page):
    plain = vienna_page.observation()
    marked = mark_question_words(plain)
    assert marked != plain and marked.replace("**", "") == plain
    before, after = sections(plain), sections(marked)
    assert "**Vienna**" in "\n".join(after["♦Text"])
    for heading in ("♦Question", "♦Quotes", "♦Past actions", "♦Scrollbar", "♦Actions left"):
        assert after[heading] == before[heading]  # only the page's title and text are marked
    for word in ("**the**", "**of**", "**which**"):  # stopwords are not
        assert word not in marked.lower()
    # Every marked word is a question word, and every question word on the page is marked.
    keys = question_keys(QUESTION)
    bold = "\n".join(after["♦Text"]).split("**")[1::2]
    assert bold and all(question_keys(word) <= keys for word in bold)
    page_words = re.findall(r"\w+", "\n".join(before["♦Text"]))
    assert len(bold) == sum(question_keys(word) <= keys and bool(question_keys(word)) for word in page_words)


def test_links_keep_their_ids_and_domains():
    observation = "\n".join(["♦Question", "Who wrote Lolita in 1955?", "♦Title", "Lolita", "♦Text",
                             "【1955†Lolita film†imdb.com】 and 【2†1955 in Lolita†lolita.org】 (1955)",
                             "♦Next action"])
    assert mark_question_words(observation).split("\n")[5] == (
        "【1955†**Lolita** film†imdb.com】 and 【2†**1955** in **Lolita**†lolita.org】 (**1955**)")


def test_the_plain_format_changes_nothing_and_a_format_round_trips(tmp_path, vienna_page):
    observation = vienna_page.observation()
    assert action_example(observation, "Quote: x") == (observation + "\n", "Quote: x")
    marked = PromptFormat(mark_question_words=True)
    assert action_example(observation, " Quote: x ", marked) == (mark_question_words(observation) + "\n", "Quote: x")
    assert PromptFormat.load(tmp_path) == PLAIN and PromptFormat.load(None) == PLAIN  # nothing saved: plain
    marked.save(tmp_path)
    assert (tmp_path / FORMAT_FILE).is_file() and PromptFormat.load(tmp_path) == marked


def test_demonstrations_are_shown_in_the_format(vienna_page):
    demo = Demonstration(QUESTION, steps=[Step(vienna_page.observation(), "Find in page: Danube")], producer="human")
    (prompt, target), = examples_from_demonstration(demo, PromptFormat(mark_question_words=True))
    assert prompt == mark_question_words(vienna_page.observation()) + "\n" and target == "Find in page: Danube"


class RecordingSampler:
    """Stands in for the model: takes scripted actions and keeps every prompt it was given."""

    device = "cpu"
    reader = None  # quotes as the script writes them

    def __init__(self, prompt_format, actions):
        self.prompt_format, self.actions, self.prompts = prompt_format, list(actions), []

    def sample(self, prompts, max_new_tokens, temperature, top_p, generator, grammars=None, stop_at=None):
        self.prompts += prompts
        return ["The Danube [1]." if p.rstrip().endswith("♦Answer") else self.actions.pop(0) for p in prompts]


def test_rollouts_show_the_policy_its_own_format(corpus):
    actions = ["Search Vienna river", "Clicked on link 0", "Quote: Vienna", "End: Answer"]
    for prompt_format in (PLAIN, PromptFormat(mark_question_words=True)):
        sampler = RecordingSampler(prompt_format, actions)
        browser = Browser(corpus, POLICY_BROWSER)
        episode, = run_episodes(sampler, [browser], QUESTION, SamplingConfig(constrained=False))
        action_prompts = [p for p in sampler.prompts if p.rstrip().endswith("♦Next action")]
        assert len(action_prompts) == 4 and episode.answer == "The Danube [1]."
        assert all(p == prompt_format.show(p.replace("**", "")) for p in action_prompts)
        assert any("**Vienna**" in p for p in action_prompts) == prompt_format.mark_question_words
