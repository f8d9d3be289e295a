"""DAgger on the real encyclopedia and real train questions, with a tiny random policy model."""

import json
import random
from dataclasses import replace

import pytest

from tests.tiny import tiny_policy_folder
from webqa import cli
from webqa.demos import append_demonstration, mixed_questions, read_demonstrations
from webqa.env import Browser
from webqa.policy import dagger
from webqa.policy.dagger import (
    answerable,
    AGGREGATE_FILE,
    STATE_FILE,
    DaggerConfig,
    label_episode,
    labelled_demonstration,
    question_pool,
    run_dagger,
    same_action,
)
from webqa.policy.expert import Expert
from webqa.policy.model import load_model
from webqa.policy.prompts import POLICY_BROWSER
from webqa.policy.train import TrainConfig, build_rows, pairs_of, read_demos
from webqa.text import reformulations
from webqa.types import Demonstration, Episode

SHORT = replace(POLICY_BROWSER, max_actions=4)  # four states per episode keep the rollouts short
SUPER_BOWL = {"id": "super-bowl", "question": "Which NFL team represented the AFC at Super Bowl 50?",
              "answers": ["Denver Broncos"], "dataset": "squad"}


@pytest.fixture(scope="module")
def tiny(corpus, tmp_path_factory):
    texts = [corpus.plain_text(t) for t in ["Danube", "Vienna", "Istanbul", "Albert Einstein"]]
    return tiny_policy_folder(tmp_path_factory.mktemp("tiny-policy"), texts)


@pytest.fixture(scope="module")
def groups():
    return mixed_questions("train", seed=0)


@pytest.fixture(scope="module")
def original_demos(corpus, groups, tmp_path_factory):
    """Expert demonstrations on two train questions: the data the policy was first cloned from."""
    path = tmp_path_factory.mktemp("demos") / "expert.jsonl"
    expert = Expert(corpus, SHORT)
    made_count = 0
    for record in groups["squad"][10:300]:  # the first two the expert answers in four actions
        if made_count == 2:
            break
        made = expert.demonstrate(record["question"], record["answers"], random.Random(0))
        if made is not None:
            made_count += 1
            demo = Demonstration.from_dict(made.episode.to_dict() | {"producer": "expert"})
            demo.settings["question_id"] = record["id"]
            append_demonstration(path, demo)
    assert len(read_demonstrations(path)) >= 1
    return path


def tiny_config(tiny, original_demos, out, **overrides) -> DaggerConfig:
    training = TrainConfig(max_steps=2, batch_size=2, max_length=128, learning_rate=1e-2, warmup=0, eval_share=0.0,
                           log_steps=1, save_steps=50, seed=0)
    knobs = {"demos": [str(original_demos)], "out": str(out), "policy": str(tiny), "n_questions": 2, "rounds": 1,
             "browser": SHORT, "train": training, "answerable_only": False}
    return DaggerConfig(**(knobs | overrides))


def replayed_labels(corpus, demo: Demonstration) -> list[tuple[str, str | None]]:
    """(observation, Expert.label) of every state the policy's actions lead through, recomputed here."""
    browser = Browser(corpus, replace(SHORT))
    browser.reset(demo.question)
    expert = Expert(corpus, SHORT)
    states = []
    for step in demo.settings["dagger"]["policy_steps"]:
        states.append((browser.observation(), expert.label(browser, demo.question, demo.gold_answers)))
        browser.step(step["action"])
    return states


# --- labelling ---------------------------------------------------------------------------


def test_labels_are_the_experts_and_unlabelled_states_are_left_out(corpus):
    """A hand-made episode: a right search, a wrong click, a scroll, garbage, and a state with no way on."""
    expert = Expert(corpus, SHORT)
    browser = Browser(corpus, replace(SHORT, max_actions=8))
    browser.reset(SUPER_BOWL["question"])
    for action in ["Search AFC Super Bowl 50 NFL team represented", "Clicked on link 5", "Scrolled down 1",
                   "fly to the moon", "Back"]:
        browser.step(action)
    episode = browser.episode
    labels = label_episode(expert, episode, SUPER_BOWL["answers"])

    again = Browser(corpus, replace(SHORT, max_actions=8))
    again.reset(SUPER_BOWL["question"])
    for step, (right, agrees) in zip(episode.steps, labels):
        assert right == Expert(corpus, SHORT).label(again, SUPER_BOWL["question"], SUPER_BOWL["answers"])
        assert agrees == (right is not None and same_action(step.action, right, again))
        again.step(step.action)
    assert labels[0] == (f"Search {' '.join(SUPER_BOWL['question'].rstrip('?').split())}", True)  # same words
    assert labels[3][1] is False  # garbage never agrees

    # A gold answer the encyclopedia lacks: once every reformulation was searched, the expert has no action.
    lost = Browser(corpus, replace(SHORT, max_actions=8))
    lost.reset(SUPER_BOWL["question"])
    for query in reformulations(SUPER_BOWL["question"]):
        lost.step(f"Search {query}")
    lost.step("Scrolled down 1")
    record = SUPER_BOWL | {"answers": ["Xyzzy Plugh"]}
    demo = labelled_demonstration(expert, lost.episode, record, round_=1, index=0, policy="p")
    marks = demo.settings["dagger"]
    assert marks["policy_steps"][-1]["label"] is None
    assert marks["visited"] == len(lost.episode.steps) and marks["labelled"] == len(demo.steps) == marks["visited"] - 1
    assert demo.answer is None and demo.producer == "policy"


def test_same_action_compares_what_the_actions_do(corpus):
    browser = Browser(corpus, replace(SHORT))
    browser.reset(SUPER_BOWL["question"])
    assert same_action("Search the Denver Broncos", "Search Broncos Denver", browser)
    assert not same_action("Search Denver", "Search Denver Broncos", browser)
    assert same_action("Scrolled down 1", " Scrolled down 1", browser)
    assert not same_action("Scrolled down 2", "Scrolled down 1", browser)
    assert not same_action("garbage", "garbage", browser)  # an invalid action agrees with nothing
    browser.step("Search Danube")
    browser.step("Clicked on link 0")
    words = " ".join(browser.page.plain_lines).split()[:20]
    full, short = " ".join(words), f"{' '.join(words[:4])}━{' '.join(words[-4:])}"
    assert same_action(f"Quote: {full}", f"Quote: {short}", browser)  # the same passage, two spellings
    assert not same_action(f"Quote: {' '.join(words[:10])}", f"Quote: {short}", browser)


# --- the loop ------------------------------------------------------------------------------


def test_one_round_end_to_end(corpus, tiny, original_demos, tmp_path, capsys):
    out = tmp_path / "dagger"
    code = cli.main(["train", "dagger", "--policy", str(tiny), "--demos", str(original_demos), "--out", str(out),
                     "--n-questions", "2", "--rounds", "1", "--max-actions", "4", "--max-steps", "2", "--aggregate-repeats", "3",
                     "--batch-size", "2", "--max-length", "128", "--save-steps", "50", "--log-steps", "1",
                     "--eval-share", "0"])
    printed = capsys.readouterr()
    assert code == 0, printed.err

    covered = {d.settings["question_id"] for d in read_demonstrations(original_demos)}
    asked = [r["id"] for r in answerable(question_pool("train", 0, covered), Expert(corpus, SHORT), 2, False)]
    labelled = read_demonstrations(out / AGGREGATE_FILE)
    assert [d.settings["question_id"] for d in labelled] == asked and not covered & set(asked)
    for demo in labelled:
        marks = demo.settings["dagger"]
        assert demo.producer == "policy" and demo.model == str(tiny) and marks["round"] == 1
        states = replayed_labels(corpus, demo)
        assert [s["label"] for s in marks["policy_steps"]] == [right for _, right in states]
        assert [(s.observation, s.action) for s in demo.steps] == [(o, r) for o, r in states if r is not None]
        assert marks["visited"] == len(states) and marks["labelled"] == len(demo.steps) >= 1

    # train.py reads the aggregate like any demonstrations file, and round 1 trained on it.
    pairs = pairs_of(read_demos([out / AGGREGATE_FILE]))
    assert len(pairs) == sum(len(d.steps) + bool(d.answer and d.quotes and d.end == "Answer") for d in labelled)
    _, counts = build_rows(load_model(str(tiny), device="cpu")[1], pairs, max_length=128)
    assert counts["rows"] == len(pairs) and counts["skipped"] == 0
    training = json.loads((out / "round-1" / "training.json").read_text())
    assert training["demonstrations"]["train"] == len(read_demonstrations(original_demos)) + 3 * len(labelled)
    assert training["config"]["demo_repeats"] == [1, 3]
    assert (out / "round-1" / "adapter_model.safetensors").exists()

    state = json.loads((out / STATE_FILE).read_text())
    (round_,) = state["rounds"]
    assert round_["questions"] == 2 and round_["episodes"] == 2
    assert round_["labelled"] == sum(len(d.steps) for d in labelled)
    assert round_["visited"] == sum(d.settings["dagger"]["visited"] for d in labelled)
    assert round_["policy"] == str(out / "round-1") and round_["train_steps"] == 2
    lines = printed.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["round", "questions", "episodes", "success"])
    assert lines[header + 1].split()[:3] == ["1", "2", "2"]


def test_a_resumed_run_does_not_redo_finished_work(corpus, tiny, original_demos, groups, tmp_path, monkeypatch):
    out = tmp_path / "dagger"
    questions = groups["squad"][:2]
    config = tiny_config(tiny, original_demos, out)
    rollouts, trainings = [], []
    real_roll_out, real_train, real_append = dagger.roll_out, dagger.train, dagger.append_demonstration
    monkeypatch.setattr(dagger, "roll_out", lambda sampler, backend, record, *rest:
                        rollouts.append(record["id"]) or real_roll_out(sampler, backend, record, *rest))
    monkeypatch.setattr(dagger, "train", lambda c: trainings.append(c) or real_train(c))

    # Killed while writing the second question's episode: the first one is in the aggregate.
    def killed_on_second(path, demo):
        if len(read_demonstrations(path) if path.exists() else []) == 1:
            raise KeyboardInterrupt
        real_append(path, demo)

    monkeypatch.setattr(dagger, "append_demonstration", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_dagger(config, questions, corpus, progress=False)
    first = read_demonstrations(out / AGGREGATE_FILE)
    assert len(first) == 1 and not trainings and not (out / STATE_FILE).exists()

    # Resumed: only the second question is rolled out, then round 1 trains.
    monkeypatch.setattr(dagger, "append_demonstration", real_append)
    rollouts.clear()
    rounds = run_dagger(config, questions, corpus, progress=False)
    assert rollouts == [questions[1]["id"]] and len(trainings) == 1
    after = read_demonstrations(out / AGGREGATE_FILE)
    assert after[0] == first[0] and [d.settings["question_id"] for d in after] == [q["id"] for q in questions]
    assert len(rounds) == 1 and rounds[0]["episodes"] == 2  # counted over both runs
    trained = (out / "round-1" / "training.json").read_bytes()

    # A second round later: round 1 is neither rolled out nor trained again; round 2 continues its adapter.
    rollouts.clear()
    trainings.clear()
    rounds = run_dagger(replace(config, rounds=2), questions, corpus, progress=False)
    assert [r["round"] for r in rounds] == [1, 2] and rollouts == [q["id"] for q in questions]
    assert len(trainings) == 1 and trainings[0].init_adapter == str(out / "round-1")
    assert trainings[0].base == str(tiny.resolve()) and trainings[0].out == str(out / "round-2")
    assert (out / "round-1" / "training.json").read_bytes() == trained
    assert rounds[1]["policy_in"] == str(out / "round-1")
    assert [d.settings["dagger"]["round"] for d in read_demonstrations(out / AGGREGATE_FILE)] == [1, 1, 2, 2]
    assert json.loads((out / "round-2" / "adapter_config.json").read_text())["base_model_name_or_path"] \
        == str(tiny.resolve())

    # Everything done: a run with the same rounds does nothing but report.
    rollouts.clear()
    trainings.clear()
    assert run_dagger(replace(config, rounds=2), questions, corpus, progress=False) == rounds
    assert not rollouts and not trainings


def test_rollout_questions_are_the_first_the_expert_answers(corpus, groups):
    expert = Expert(corpus, SHORT)
    pool = groups["open-domain"][:12]
    answers = [expert.demonstrate(r["question"], list(r["answers"]), random.Random(0)) is not None for r in pool]
    assert 2 <= sum(answers) < len(pool)  # the pool holds both kinds
    assert answerable(pool, expert, 2, progress=False) == [r for r, ok in zip(pool, answers) if ok][:2]
    assert answerable(pool, expert, 100, progress=False) == [r for r, ok in zip(pool, answers) if ok]


def test_labelled_episodes_of_a_policy_episode_keep_what_the_policy_did(corpus):
    """The policy's own actions stay in the record: replaying them rebuilds its episode."""
    browser = Browser(corpus, replace(SHORT))
    browser.reset(SUPER_BOWL["question"])
    for action in ["Search Super Bowl 50", "Clicked on link 0", "nonsense", "Back"]:
        browser.step(action)
    episode = Episode.from_dict(browser.episode.to_dict() | {"answer": "The Broncos [1]."})
    demo = labelled_demonstration(Expert(corpus, SHORT), episode, SUPER_BOWL, round_=3, index=1, policy=None)
    marks = demo.settings["dagger"]
    assert [s["action"] for s in marks["policy_steps"]] == episode.actions
    assert [s["error"] for s in marks["policy_steps"]] == [s.error for s in episode.steps]
    assert marks["policy_answer"] == "The Broncos [1]." and marks["success"] is False  # no quotes, no "Denver"
    assert demo.model == "base" and marks["round"] == 3 and marks["episode"] == 1
    assert Demonstration.from_dict(json.loads(json.dumps(demo.to_dict()))) == demo
