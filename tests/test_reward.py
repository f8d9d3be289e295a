"""The reward model on a tiny random Llama: building from a BC adapter, scoring, training, best-of-n, eval."""

import json
import re
import shutil

import pytest
import torch

from tests.tiny import tiny_policy_folder
from webqa.cli import main as cli_main
from webqa.comparisons import append_comparison
from webqa.env import BrowserSettings
from webqa.env.answering import answer_prompt
from webqa.policy.reader import FEATURES, READER_FILE, QuoteReader, load_reader
from webqa.policy.model import load_policy
from webqa.records import append_record
from webqa.reward.best_of import evaluate_pool, format_best_of
from webqa.reward.model import POLICY_COPY, build_reward_model, load_reward_model
from webqa.reward.pool import PoolCandidate, PoolRecord
from webqa.reward.train import RewardTrainConfig, main as train_main, train
from webqa.types import ComparedAnswer, Comparison, Episode, Quote

DANUBE = Quote("Danube", "https://en.wikipedia.org/wiki/Danube", "The Danube flows through Vienna and Budapest.")
RHINE = Quote("Rhine", "https://en.wikipedia.org/wiki/Rhine", "The Rhine flows through Basel and Cologne.")
GOOD, BAD = ComparedAnswer("The Danube flows there [1].", [DANUBE]), ComparedAnswer("Maybe the Rhine [1].", [RHINE])


def make_comparisons(count=16):
    items = []
    for i in range(count):
        question = f"Question {i}: which river flows through Vienna?"
        if i % 5 == 4:
            items.append(Comparison(question, GOOD, GOOD, 0.5, producer="synthetic"))
        else:  # the better answer on either side
            items.append(Comparison(question, GOOD, BAD, 1.0) if i % 2 else Comparison(question, BAD, GOOD, 0.0))
    return items


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    texts = [answer_prompt(c.question, c.a.quotes) + "\n" + c.a.text for c in make_comparisons()]
    texts += [answer_prompt("Which river?", [RHINE]) + "\n" + BAD.text] * 3
    return tiny_policy_folder(tmp_path_factory.mktemp("tiny-base"), texts, vocab_size=300)


def make_adapter(base, folder):
    """A LoRA 'BC policy' on the tiny base with non-zero weights, so that merging it changes the model."""
    from peft import LoraConfig, get_peft_model

    model, _ = load_policy(base, device="cpu")
    torch.manual_seed(1)
    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                            task_type="CAUSAL_LM"))
    peft.peft_config["default"].base_model_name_or_path = str(base)
    peft.save_pretrained(folder)
    return folder


def write_reader(folder):
    """The policy's quote reader (made-up weights on the reader's features): the reading term starts from it."""
    weights = [0.3, 0.2, 0.5, 0.4, 0.1, 0.2, 0.6, -0.1, -0.2, 0.0]
    QuoteReader(weights=weights, mean=[0.5] * len(FEATURES), scale=[2.0] * len(FEATURES),
                quote_weights=[0.0] * len(FEATURES), quote_bias=0.0).save(folder / READER_FILE)
    return folder


@pytest.fixture(scope="module")
def tiny_adapter(tiny_base, tmp_path_factory):
    """A BC policy with a quote reader, as the shipped one."""
    return write_reader(make_adapter(tiny_base, tmp_path_factory.mktemp("tiny-bc")))


@pytest.fixture(scope="module")
def comparisons_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("comparisons") / "comparisons.jsonl"
    for item in make_comparisons():
        append_comparison(path, item)
    return path


def tiny_config(comparisons_file, policy, out, **overrides):
    knobs = {"comparisons": [str(comparisons_file)], "out": str(out), "policy": str(policy), "max_length": 128,
             "batch_size": 4, "learning_rate": 3e-3, "warmup": 0, "eval_share": 0.25, "log_steps": 1,
             "save_steps": 50, "seed": 0, "max_steps": 12, "lora_r": 8, "lora_alpha": 16}
    return RewardTrainConfig(**(knobs | overrides))


@pytest.fixture(scope="module")
def trained(comparisons_file, tiny_adapter, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "rm"
    return out, train(tiny_config(comparisons_file, tiny_adapter, out), progress=False)


def count_forward_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


ITEMS = [("Which river flows through Vienna?", [DANUBE], "The Danube [1]."),
         ("Which river flows through Vienna?", [DANUBE, RHINE], "It is the Danube, not the Rhine [1][2]."),
         ("Who?", [RHINE], "Nobody."),
         ("Which river flows through Basel?", [RHINE], "The Rhine flows through Basel and Cologne [1].")]


# --- the model -----------------------------------------------------------------------------------


def test_the_reward_model_starts_from_the_merged_policy_and_reloads_without_it(tiny_base, tmp_path):
    adapter = make_adapter(tiny_base, tmp_path / "bc")
    rm = build_reward_model(str(adapter), max_length=128)
    merged, _ = load_policy(adapter, device="cpu")
    plain, _ = load_policy(tiny_base, device="cpu")
    name = "layers.0.self_attn.q_proj.weight"
    body = dict(rm.backbone.get_base_model().named_parameters())
    wrapped = name.replace("q_proj.weight", "q_proj.base_layer.weight")  # LoRA wraps the projection
    assert torch.equal(body[wrapped], dict(merged.base_model.named_parameters())[name])
    assert not torch.equal(body[wrapped], dict(plain.base_model.named_parameters())[name])  # the BC delta is in
    assert not hasattr(rm.backbone.get_base_model(), "lm_head")  # the unembedding is gone; a scalar head reads
    with torch.no_grad():  # LoRA B starts at zero: make the reward model's own adapter matter too
        for param_name, param in rm.backbone.named_parameters():
            if "lora_B" in param_name:
                param.normal_(std=0.05)
    rm.eval()
    before = rm.score(ITEMS)

    rm.save(tmp_path / "rm")
    shutil.rmtree(adapter)  # the reward model keeps its own copy of the policy adapter
    names = {p.name for p in (tmp_path / "rm").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "head.safetensors", "reward.json",
            "tokenizer.json", POLICY_COPY} <= names
    assert json.loads((tmp_path / "rm" / "reward.json").read_text())["policy"] == POLICY_COPY
    loaded = load_reward_model(tmp_path / "rm", device="cpu")
    assert type(loaded.backbone).__name__ == "LlamaModel"  # merged
    assert loaded.score(ITEMS) == pytest.approx(before, abs=1e-4)
    assert load_reward_model(tmp_path / "rm", device="cpu", merge=False).score(ITEMS) == pytest.approx(before, abs=1e-4)


def test_a_reward_model_on_the_shipped_policy_keeps_no_copy_and_refuses_a_retrained_one(tiny_base, tmp_path,
                                                                                         monkeypatch):
    import webqa.reward.model as reward_model

    shipped = make_adapter(tiny_base, tmp_path / "shipped")
    monkeypatch.setattr(reward_model, "SHIPPED_POLICY", shipped)
    rm = build_reward_model(str(shipped), max_length=128)
    rm.eval()
    before = rm.score(ITEMS)
    rm.save(tmp_path / "rm")
    meta = json.loads((tmp_path / "rm" / "reward.json").read_text())
    assert meta["policy"] == "shipped" and not (tmp_path / "rm" / POLICY_COPY).exists()
    assert load_reward_model(tmp_path / "rm", device="cpu").score(ITEMS) == pytest.approx(before, abs=1e-4)
    (shipped / "adapter_model.safetensors").write_bytes(b"retrained")
    with pytest.raises(ValueError, match="earlier shipped policy"):
        load_reward_model(tmp_path / "rm", device="cpu")


def test_the_reward_model_starts_as_the_policys_reader_and_keeps_its_reading_weights(tiny_adapter, tmp_path):
    rm = build_reward_model(str(tiny_adapter), max_length=128)
    assert torch.count_nonzero(rm.head.weight) == 0  # the transformer's head starts silent
    rm.eval()
    reader = load_reader(tiny_adapter)
    expected = [reader.scores(q, quotes[0].title, [re.sub(r"\s*\[\d+\]", "", answer)])[0]
                for q, quotes, answer in ITEMS]
    assert rm.score(ITEMS) == pytest.approx(expected, abs=1e-4)
    assert len({round(x, 4) for x in expected}) == len(ITEMS)  # the reader tells these answers apart

    with torch.no_grad():  # as if trained
        rm.reading.weight.mul_(-2.0)
        rm.head.weight.normal_(std=0.05)
    before = rm.score(ITEMS)
    rm.save(tmp_path / "rm")
    loaded = load_reward_model(tmp_path / "rm", device="cpu")
    assert torch.equal(loaded.reading.weight, rm.reading.weight)
    assert loaded.score(ITEMS) == pytest.approx(before, abs=1e-4)

    plain = build_reward_model(str(tiny_adapter), max_length=128, reading=False)
    assert plain.reading is None and torch.count_nonzero(plain.head.weight) > 0


def test_scoring_a_batch_is_one_forward_pass_and_padding_does_not_change_scores(trained):
    rm = load_reward_model(trained[0], device="cpu")
    calls, handle = count_forward_calls(rm.backbone)
    together = rm.score(ITEMS)
    assert len(calls) == 1 and len(together) == 4
    alone = [rm.score([item])[0] for item in ITEMS]
    handle.remove()
    assert together == pytest.approx(alone, abs=1e-4)  # right padding: each row is read at its own last token
    assert len(set(round(s, 4) for s in together)) == 4


def test_equal_items_are_read_once(trained):
    rm = load_reward_model(trained[0], device="cpu")
    batches = []
    original = rm.collate
    rm.collate = lambda rows: batches.append(len(rows)) or original(rows)
    copy = (ITEMS[0][0], [Quote(**vars(q)) for q in ITEMS[0][1]], ITEMS[0][2])  # equal, not the same objects
    scores = rm.score([ITEMS[0], ITEMS[1], copy, ITEMS[0]])
    assert batches == [2] and scores[0] == scores[2] == scores[3] != scores[1]
    assert scores[:2] == pytest.approx(rm.score(ITEMS[:2]), abs=1e-4)


def test_long_prompts_lose_their_start_and_keep_the_answer(trained):
    rm = load_reward_model(trained[0], device="cpu")
    long_quote = Quote("Danube", DANUBE.url, " ".join(["The Danube is long."] * 200))
    ids = rm.encode("Which river?", [long_quote], "The Danube [1].").ids
    answer_ids = rm.tokenizer("The Danube [1].", add_special_tokens=False)["input_ids"]
    assert len(ids) == rm.max_length == 128
    assert ids[-len(answer_ids) - 1 :] == answer_ids + [rm.tokenizer.eos_token_id]


# --- training ------------------------------------------------------------------------------------------


def test_training_learns_the_preference_and_reports_the_trivial_scorers(trained, comparisons_file, tiny_adapter):
    out, summary = trained
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "head.safetensors", "reward.json", "training.json", "loss.png",
            POLICY_COPY} <= names
    written = json.loads((out / "training.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["steps"] == 12 and written["resumed_from_step"] == 0
    assert written["comparisons"]["total"] == 16 and written["comparisons"]["held_out_questions"] == 4
    assert written["comparisons"]["by_producer"] == {"human": 13, "synthetic": 3}
    assert set(written["held_out_accuracy"]) == {"reward model", "answer length", "word overlap", "policy's reader"}
    assert written["reading_weights"] != dict(zip(FEATURES, load_reader(tiny_adapter).weights))  # they trained
    losses = [e["loss"] for e in written["log_history"] if "loss" in e]
    assert losses[-1] < losses[0]
    assert written["eval_loss"] is not None and written["held_out_accuracy"]["reward model"] == 1.0
    rm = load_reward_model(out, device="cpu")
    good, bad = rm.score([("A new question: which river?", GOOD.quotes, GOOD.text),
                          ("A new question: which river?", BAD.quotes, BAD.text)])
    assert good > bad


def test_training_resumes_from_the_last_checkpoint(comparisons_file, tiny_base, tmp_path):
    out = tmp_path / "rm"
    args = ["--comparisons", str(comparisons_file), "--out", str(out), "--policy", "base", "--base", str(tiny_base),
            "--max-length", "128", "--batch-size", "2", "--save-steps", "2", "--log-steps", "1", "--lr", "1e-3"]
    assert train_main(args + ["--max-steps", "2"]) == 0
    assert (out / "checkpoints" / "checkpoint-2" / "trainable.safetensors").exists()
    assert json.loads((out / "reward.json").read_text())["policy"] is None  # started from the bare base
    assert train_main(args + ["--max-steps", "4"]) == 0
    summary = json.loads((out / "training.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 4
    assert [e["step"] for e in summary["log_history"] if "loss" in e] == [1, 2, 3, 4]  # continued
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]


# --- best-of-n ------------------------------------------------------------------------------------------


def fake_episodes(question):
    """Four episodes: three answered (different answers), one that collected no quote."""
    answers = [("Maybe the Rhine [1].", [RHINE]), ("The Danube flows there [1].", [DANUBE]), (None, []),
               ("Vienna is on the Danube [1].", [DANUBE])]
    return [Episode(question=question, quotes=quotes, end="Answer" if text else "out of actions", answer=text)
            for text, quotes in answers]


@pytest.fixture
def fake_rollouts(monkeypatch):
    monkeypatch.setattr("webqa.agent.load_sampler", lambda policy=None: None)
    monkeypatch.setattr("webqa.policy.rollout.run_episodes",
                        lambda sampler, browsers, question, config=None, **kw: fake_episodes(question))


def test_best_of_n_returns_the_argmax_and_keeps_every_candidate(trained, fake_rollouts):
    from webqa.agent import answer
    from webqa.loading import load_reward

    rm = load_reward(str(trained[0]))
    calls, handle = count_forward_calls(rm.backbone)
    result = answer("Which river flows through Vienna?", n=4, reward=str(trained[0]), backend=object())
    handle.remove()
    assert len(calls) == 1  # all four candidates in one forward pass
    scores = [c.score for c in result.candidates]
    assert len(scores) == 4 and scores[2] is None and all(isinstance(s, float) for s in scores[:2] + scores[3:])
    best = max((i for i in range(4) if scores[i] is not None), key=lambda i: scores[i])
    assert result.trajectory is result.candidates[best].episode and result.text == result.candidates[best].text
    assert result.text != "Maybe the Rhine [1]."  # the trained model prefers the Danube answers
    assert [r.quote for r in result.references] == [q.text for q in result.candidates[best].episode.quotes]


def test_ask_shows_every_candidate_with_its_score(trained, fake_rollouts, corpus, capsys):
    assert cli_main(["ask", "--n", "4", "--show-candidates", "--reward", str(trained[0]), "Which river?"]) == 0
    out = capsys.readouterr().out
    listed = out.split("Candidates:\n")[1].splitlines()[:4]
    assert [line.split(".")[0].strip(" *") for line in listed] == ["1", "2", "3", "4"]
    assert sum(line.startswith(" *") for line in listed) == 1 and "[-] (no answer)" in listed[2]
    assert all(re.search(r"\[-?\d+\.\d\d\] ", line) for i, line in enumerate(listed) if i != 2)  # scores


def test_best_of_n_end_to_end_with_the_tiny_policy(trained, tiny_base, corpus):
    from webqa.agent import answer

    result = answer("Which river flows through Vienna?", n=3, policy=str(tiny_base), reward=str(trained[0]),
                    backend=corpus, browser_settings=BrowserSettings(window_lines=8, max_actions=3))
    assert len(result.candidates) == 3 and len({id(c.episode) for c in result.candidates}) == 3
    assert all(1 <= len(c.episode.steps) <= 3 for c in result.candidates)
    scored = [c for c in result.candidates if c.score is not None]
    assert all(c.found for c in scored)
    if scored:  # a random policy rarely answers; when it does, the best-scored answer wins
        assert result.trajectory is max(scored, key=lambda c: c.score).episode


# --- best-of-k in `webqa eval` --------------------------------------------------------------------------


def write_pool(tmp_path):
    """Three questions and a saved pool of 4 answers each (the Danube answers are the correct ones)."""
    questions = [{"question": f"Question {i}?", "answers": ["Danube"]} for i in range(3)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    good = PoolCandidate(GOOD.text, GOOD.quotes, correct=True, supported=True)
    bad = PoolCandidate(BAD.text, BAD.quotes, correct=False, supported=False)
    for q, candidates in zip(questions, ([bad, good, bad, bad], [bad, bad, bad, bad], [good, good, bad, good])):
        record = PoolRecord(q["question"], candidates, answers=["Danube"])
        append_record(tmp_path / "report.pool.jsonl", record.to_dict())
    return questions


def test_eval_pool_estimates_best_of_k_from_a_saved_pool(trained, corpus, tmp_path, capsys):
    out = tmp_path / "report.json"
    out.write_text(json.dumps({"systems": {"bm25-sentence": {"accuracy": 0.2}}}))
    write_pool(tmp_path)

    report = evaluate_pool(tmp_path / "q.jsonl", out, pool=4, reward=str(trained[0]))  # nothing left to sample
    accuracy = report["accuracy"]
    assert accuracy["random"]["1"] == pytest.approx((1 / 4 + 0 + 3 / 4) / 3)
    assert accuracy["oracle"]["4"] == pytest.approx(2 / 3) and accuracy["oracle"]["2"] == pytest.approx((0.5 + 1) / 3)
    assert accuracy["reward model"]["4"] == pytest.approx(2 / 3)  # the trained model picks the Danube answer
    assert report["oracle_gain_recovered_at_4"] == pytest.approx(1.0)
    assert set(accuracy["reward model"]) == {"1", "2", "4"}  # k=8 needs a pool of 8
    baselines = {"answer length", "word overlap", "policy's reader"}  # the shipped policy's reader
    assert set(accuracy) == {"reward model", "oracle", "random"} | baselines
    assert set(report["pairwise_accuracy"]) == {"reward model"} | baselines
    assert report["pairwise_accuracy"]["reward model"] == 1.0  # both decisive pairs (questions 1 and 3) right
    assert "pairwise accuracy on the pool's decisive pairs: reward model 1.000" in format_best_of(report)
    assert (tmp_path / "report.best-of-k.png").stat().st_size > 0
    written = json.loads(out.read_text())
    assert written["systems"]["bm25-sentence"]["accuracy"] == 0.2 and written["best_of_k"] == report
    scores_file = (tmp_path / "report.scores.jsonl").read_text()
    assert len(scores_file.splitlines()) == 3
    assert evaluate_pool(tmp_path / "q.jsonl", out, pool=4, reward=str(trained[0])) == report
    assert (tmp_path / "report.scores.jsonl").read_text() == scores_file  # cached, not scored again
    with pytest.raises(ValueError, match="pools of"):
        evaluate_pool(tmp_path / "q.jsonl", out, pool=8, reward=str(trained[0]))


def test_eval_pool_adds_best_of_k_with_the_greedy_answer_first_from_the_greedy_run(trained, corpus, tmp_path):
    from webqa.env import Browser
    from webqa.policy.prompts import POLICY_BROWSER
    from webqa.text import sentences_in_view
    from webqa.reward.best_of import (GREEDY_FIRST, READER, READER_GREEDY_FIRST, baseline_scorers,
                                      greedy_first_best_of_k)
    from webqa.reward.pool import read_pool

    questions = write_pool(tmp_path)
    browser = Browser(corpus, POLICY_BROWSER)
    browser.reset("Question?")
    actions = ["Search Danube Vienna", "Clicked on link 0"]
    for action in actions:
        browser.step(action)
    sentence = sentences_in_view(browser, partial=True)[0]
    actions += [f"Quote: {sentence}", "End: Answer"]
    browser.step(actions[2])
    greedy_quotes = list(browser.quotes)  # what replaying the greedy run gives back
    with open(tmp_path / "report.jsonl", "w") as log:  # `webqa eval`'s rows of a greedy (n=1) policy run
        for i, q in enumerate(questions):
            answer, quotes = ("The Danube [1].", [sentence]) if i < 2 else ("", [])
            log.write(json.dumps({"system": "policy", "question": q["question"], "answer": answer, "quotes": quotes,
                                  "trajectory": actions if quotes else actions[:2]}) + "\n")
    out = tmp_path / "report.json"
    out.write_text(json.dumps({"n": 1, "systems": {}}))
    report = evaluate_pool(tmp_path / "q.jsonl", out, pool=4, reward=str(trained[0]))
    row = report["accuracy"][GREEDY_FIRST]
    assert row["1"] == pytest.approx(2 / 3)  # the greedy answers alone: Danube, Danube, none
    greedy_score = [json.loads(line)["scores"][0]
                    for line in (tmp_path / "report.greedy-scores.jsonl").read_text().splitlines()]
    assert greedy_score[2] is None and None not in greedy_score[:2]
    pools = [json.loads(line) for line in (tmp_path / "report.scores.jsonl").read_text().splitlines()]
    values = [[0.0, 1.0, 0.0, 0.0], [0.0] * 4, [1.0, 1.0, 0.0, 1.0]]  # the pools' correct answers
    for k in (2, 4):
        expected = [greedy_first_best_of_k(g, float(i < 2), p["scores"], v, k)
                    for i, (g, p, v) in enumerate(zip(greedy_score, pools, values))]
        assert row[str(k)] == pytest.approx(sum(expected) / 3)
    # The same, with the policy's reader choosing: the baseline the reward model has to beat.
    reader, row = baseline_scorers(None)[READER], report["accuracy"][READER_GREEDY_FIRST]
    greedy_read = [reader(q["question"], greedy_quotes, "The Danube [1].") if i < 2 else None
                   for i, q in enumerate(questions)]
    pools_read = [[reader(p.question, c.quotes, c.text) if c.answered else None for c in p.candidates]
                  for p in read_pool(tmp_path / "report.pool.jsonl")]
    assert row["1"] == pytest.approx(2 / 3)
    for k in (2, 4):
        expected = [greedy_first_best_of_k(g, float(i < 2), p, v, k)
                    for i, (g, p, v) in enumerate(zip(greedy_read, pools_read, values))]
        assert row[str(k)] == pytest.approx(sum(expected) / 3)
    out.write_text(json.dumps({"n": 4, "systems": {}}))  # best-of-4 rows are not greedy answers
    rows = evaluate_pool(tmp_path / "q.jsonl", out, pool=4, reward=str(trained[0]))["accuracy"]
    assert GREEDY_FIRST not in rows and READER_GREEDY_FIRST not in rows


def test_sample_writes_a_resumable_pool_and_synthetic_comparisons(tiny_base, corpus, tmp_path, capsys):
    from webqa.reward.pool import read_pool
    from webqa.reward.synthetic import main as sample_main

    questions = [{"question": "Which river flows through Vienna?", "answers": ["Danube"], "id": "v"},
                 {"question": "Who wrote Hamlet?", "answers": ["Shakespeare"], "id": "h"}]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    args = ["--questions", str(tmp_path / "q.jsonl"), "--n", "2", "--out", str(tmp_path / "pool.jsonl"),
            "--comparisons", str(tmp_path / "synthetic.jsonl"), "--policy", str(tiny_base), "--max-actions", "3"]
    assert sample_main(args + ["--limit", "1"]) == 0
    assert sample_main(args) == 0
    out = capsys.readouterr().out
    assert "1 questions sampled (1 already in" in out and "pairs" in out
    pool = read_pool(tmp_path / "pool.jsonl")
    assert [r.question for r in pool] == [q["question"] for q in questions]
    assert all(len(r.candidates) == 2 and r.answers for r in pool)
    assert all(len(c.actions) <= 3 and c.correct is not None and c.score is None for r in pool for c in r.candidates)
    assert (tmp_path / "synthetic.jsonl").exists()  # a random policy answers nothing: no pairs, an empty file


# --- expert iteration from a saved pool ------------------------------------------------------------------


def test_iteration_from_a_saved_pool_keeps_the_reward_models_replayed_picks(trained, corpus, tmp_path):
    from webqa.env import Browser
    from webqa.policy.prompts import POLICY_BROWSER
    from webqa.text import sentences_in_view
    from webqa.reward.iterate import pool_picks
    from webqa.reward.pool import candidate_of, read_pool

    def browsed(question, answer):
        browser = Browser(corpus, POLICY_BROWSER)
        browser.reset(question)
        for action in ("Search Danube Vienna", "Clicked on link 0"):
            browser.step(action)
        browser.step(f"Quote: {sentences_in_view(browser, partial=True)[0]}")
        browser.step("End: Answer")
        browser.episode.answer = answer
        return browser.episode

    unanswered = PoolCandidate("", [], end="out of actions", actions=["Search Danube"])
    first = candidate_of(browsed("Which river flows through Vienna?", "The Danube [1]."), ["Danube"])
    tampered = candidate_of(browsed("Which river flows through Budapest?", "The Danube [1]."), ["Danube"])
    tampered.quotes = [DANUBE]  # not what the replay will quote
    pool = tmp_path / "pool.jsonl"
    append_record(pool, PoolRecord("Which river flows through Vienna?",
                                   [unanswered, first], id="v", answers=["Danube"]).to_dict())
    append_record(pool, PoolRecord("Which river flows through Budapest?", [tampered, unanswered], id="b").to_dict())
    kept = []
    model = load_reward_model(trained[0])
    stats = pool_picks(read_pool(pool), tmp_path / "out.jsonl", model, lambda item, e: kept.append((item, e)), "rm")
    assert stats == {"questions": 2, "already_done": 0, "sampled": 2, "replay_mismatches": 1}
    [(item, episode)] = kept  # the answered candidate of the first pool; the tampered one does not replay
    assert item == {"id": "v", "answers": ["Danube"]} and episode.actions == first.actions
    assert episode.answer == "The Danube [1]." and all(step.observation for step in episode.steps)
    scored = read_pool(tmp_path / "out.jsonl")
    assert [c.score is None for c in scored[0].candidates] == [True, False] and scored[0].reward_model == "rm"
    again = pool_picks(read_pool(pool), tmp_path / "out.jsonl", model, lambda item, e: kept.append(e), "rm")
    assert again["already_done"] == 2 and len(kept) == 1  # resumed: nothing scored twice


def test_iteration_trains_on_the_old_and_the_new_demonstrations_with_its_seed(tiny_base, corpus, tmp_path):
    from webqa.demos import append_demonstration
    from webqa.env import Browser
    from webqa.reward.iterate import demonstration_of, main as iterate_main

    def demonstration(question, producer):
        browser = Browser(corpus, BrowserSettings(window_lines=8))
        browser.reset(question)
        for action in ("Search Danube", "Clicked on link 0", "Scrolled down 1", "End: Answer"):
            browser.step(action)
        demo = demonstration_of(browser.episode, {"id": question, "answers": ["Danube"]}, "tiny")
        demo.producer = producer
        return demo

    old, out = tmp_path / "expert.jsonl", tmp_path / "iter"
    append_demonstration(old, demonstration("Which river flows through Vienna?", "expert"))
    for question in ("Which river flows through Budapest?", "Which river flows through Belgrade?"):
        append_demonstration(out / "demos.jsonl.gz", demonstration(question, "policy"))
    assert iterate_main(["--out", str(out), "--stages", "bc", "--demos", str(old), "--seed", "5", "--base",
                         str(tiny_base), "--max-steps", "1", "--max-length", "128", "--eval-share", "0",
                         "--save-steps", "1", "--repeat", "1", "2"]) == 0
    training = json.loads((out / "bc" / "training.json").read_text())
    assert training["config"]["demos"] == [str(old), str(out / "new-demos.jsonl")]
    assert training["config"]["demo_repeats"] == [1, 2] and training["config"]["seed"] == 5
    assert training["demonstrations"]["train"] == 1 + 2 * 2 and training["steps"] == 1
