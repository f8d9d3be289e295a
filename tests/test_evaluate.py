"""The evaluation harness: scoring, the BM25 baseline, resuming, the report table."""

import json

import pytest

from webqa.env import Browser
from webqa.evaluate import best_sentence, evaluate, furthest_stage
from webqa.qa import read_questions
from webqa.scoring import score_record
from webqa.policy.prompts import POLICY_BROWSER
from webqa.report import STAGES, build_report, format_report, markdown, summarize


def test_score_counts_correct_supported_cited_and_invalid():
    record = {"answer": "It is the Danube [1].", "quotes": ["Vienna lies on the Danube."],
              "actions": ["Search Vienna", "Clicked on link 0", "click it!", "End: Answer"], "seconds": 1.0}
    figures = score_record(record, ["Danube"])
    assert figures == {"correct": True, "supported": True, "citations_valid": True, "answered": True,
                       "words": 4, "actions": 4, "invalid_actions": 1}
    wrong = score_record({**record, "answer": "The Rhine [2]."}, ["Danube"])
    assert not wrong["correct"] and not wrong["supported"] and not wrong["citations_valid"]
    uncited = score_record({**record, "answer": "The Danube."}, ["Danube"])
    assert uncited["correct"] and not uncited["supported"] and not uncited["citations_valid"]


def test_best_sentence_prefers_the_most_overlap():
    text = "Vienna is a city. The Danube flows through Vienna and Budapest. Rivers are wet."
    assert best_sentence("Which river flows through Vienna?", text) == "The Danube flows through Vienna and Budapest."


def test_questions_file_must_have_question_and_answers(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "x", "answers": ["y"]}\n{"question": "z"}\n')
    with pytest.raises(ValueError, match="q.jsonl, line 2"):
        read_questions(bad)


def test_bm25_baseline_runs_resumes_and_reports(corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    items = [{"question": "Which river flows through Vienna?", "answers": ["Danube"]},
             {"question": "Who painted the Mona Lisa?", "answers": ["Leonardo da Vinci", "Leonardo"]},
             {"question": "zzqx qqzx", "answers": ["nothing"]}]
    questions.write_text("".join(json.dumps(i) + "\n" for i in items))
    out = tmp_path / "report.json"
    report = evaluate(questions, out, limit=2, systems=("bm25-sentence",))
    log = tmp_path / "report.jsonl"
    assert len(log.read_text().splitlines()) == 2
    figures = report["systems"]["bm25-sentence"]
    assert figures["questions"] == 2 and figures["citation_validity"] == 1.0
    assert 0.0 <= figures["accuracy"] <= 1.0 and figures["mean_actions"] == 1.0
    # A second run with the third question only adds that one; a cut-off line is ignored.
    with open(log, "a") as sink:
        sink.write('{"system": "bm25-sent')
    report = evaluate(questions, out, systems=("bm25-sentence",))
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]
    assert [r["question"] for r in rows] == [i["question"] for i in items]
    assert report["systems"]["bm25-sentence"]["questions"] == 3
    assert json.loads(out.read_text())["systems"] == report["systems"]
    table = format_report(report)
    assert "accuracy" in table and "bm25-sentence" in table


def test_an_unknown_system_is_refused_before_anything_is_written(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who wrote Hamlet?", "answers": ["Shakespeare"]}\n')
    with pytest.raises(ValueError, match="unknown system policy-free: choose from policy, policy-n1, script"):
        evaluate(questions, tmp_path / "report.json", systems=("bm25-sentence", "policy-free"))
    assert not (tmp_path / "report.jsonl").exists()


def test_furthest_stage_replays_the_episode_and_tells_how_far_it_got(corpus):
    question = "Which river flows through Vienna?"

    def stage(actions, answers=("Danube",), correct=False, supported=False):
        row = {"question": question, "trajectory": actions, "correct": correct, "supported": supported}
        return furthest_stage(corpus, POLICY_BROWSER, row, list(answers))

    assert stage([]) == stage(["Search zzqx qqzx"]) == "answer never shown"
    assert stage(["Search Danube"]) == "answer in search results only"
    assert stage(["Search Danube", "Clicked on link 0"]) == "answer in view"
    # A word only at the end of a long page: opened, never scrolled to.
    browser = Browser(corpus, POLICY_BROWSER)
    browser.reset(question)
    opened = ["Search Istanbul", "Clicked on link 0"]
    for action in opened:
        browser.step(action)
    assert browser.page.title == "Istanbul" and len(browser.page.lines) > 3 * POLICY_BROWSER.window_lines
    top = " ".join(browser.page.plain_lines[: POLICY_BROWSER.window_lines]).lower()
    deep = next(w for line in reversed(browser.page.plain_lines) for w in line.split()
                if w.isalpha() and len(w) > 6 and w.lower() not in top)
    assert stage(opened, answers=[deep]) == "answer on a page opened"
    assert stage(opened + ["Back"], answers=[deep]) == "answer on a page opened"  # what was reached stays reached
    assert stage(["Search Danube"], supported=True) == "answer quoted and cited"
    assert stage([], correct=True, supported=True) == "correct"


def test_the_report_shows_the_policys_stages(corpus):
    rows = [{"correct": c, "supported": c, "citations_valid": True, "answered": True, "words": 5, "actions": 4,
             "invalid_actions": 0, "seconds": 1.0, "stage": STAGES[5] if c else STAGES[0]}
            for c in (True, False, False)]
    figures = summarize(rows)
    assert figures["stages"][STAGES[5]] == pytest.approx(1 / 3) and figures["stages"][STAGES[0]] == pytest.approx(2 / 3)
    assert sum(figures["stages"].values()) == pytest.approx(1.0)
    baseline = summarize([{k: v for k, v in row.items() if k != "stage"} for row in rows])
    assert "stages" not in baseline
    table = format_report({"systems": {"policy": figures, "bm25-sentence": baseline}})
    assert "how far the episodes got" in table and all(stage in table for stage in STAGES)


def _row(question, correct):
    return {"question": question, "correct": correct, "supported": correct, "citations_valid": True,
            "answered": True, "words": 5, "actions": 3, "invalid_actions": 0, "seconds": 1.0}


def test_report_has_intervals_rows_per_source_and_paired_sign_tests():
    questions = [f"q{i}" for i in range(12)]
    sources = {q: ("squad" if i < 6 else "nq") for i, q in enumerate(questions)}
    agent = [_row(q, i < 9) for i, q in enumerate(questions)]  # right on q0..q8
    baseline = [_row(q, i in (0, 9)) for i, q in enumerate(questions)]  # right on q0 and q9
    report = build_report({"bm25-sentence": baseline, "policy": agent}, sources)
    figures = report["systems"]["policy"]
    assert figures["accuracy"] == 0.75 and figures["accuracy_ci"][0] < 0.75 < figures["accuracy_ci"][1]
    assert report["sources"]["squad"]["policy"]["accuracy"] == 1.0
    assert report["sources"]["nq"]["policy"]["accuracy"] == 0.5
    assert report["agent"] == "policy"
    # Discordant: the agent alone on q1..q8 (8), the baseline alone on q9 (1): p = 2·(1+9)/512.
    assert report["paired"]["bm25-sentence"] == {"questions": 12, "agent_only": 8, "other_only": 1,
                                                 "p_value": pytest.approx(20 / 512)}
    table = format_report(report)
    assert "accuracy squad (6)" in table and "0.750 [" in table and "0.0391" in table
    readme = markdown(report)
    assert "| accuracy, nq (6) | 0.167 [" in readme and "| `bm25-sentence` | 12 | 8 | 1 | 0.0391 |" in readme


def test_report_pairs_each_policy_variant_with_the_baselines():
    questions = [f"q{i}" for i in range(10)]
    agent = [_row(q, True) for q in questions]
    greedy = [_row(q, i < 2) for i, q in enumerate(questions)]  # right on q0, q1
    script = [_row(q, i >= 5) for i, q in enumerate(questions)]  # right on q5..q9
    report = build_report({"script": script, "policy-n1": greedy, "policy": agent}, {})
    assert set(report["paired"]) == {"script", "policy-n1"}
    # policy-n1 is paired with script only (not with itself, not with the agent): 2 against 5.
    assert report["variants"] == {"policy-n1": {"script": {"questions": 10, "agent_only": 2, "other_only": 5,
                                                           "p_value": pytest.approx(2 * (1 + 7 + 21) / 128)}}}
    assert "| `policy-n1` against |" in markdown(report) and "policy-n1 against" in format_report(report)


def test_script_runs_end_to_end_without_a_model(corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who painted the Mona Lisa?", "answers": ["Leonardo"], "dataset": "nq"}\n')
    report = evaluate(questions, tmp_path / "report.json", systems=("script",))
    row = json.loads((tmp_path / "report.jsonl").read_text().splitlines()[0])
    assert row["trajectory"][0] == "Search Who painted the Mona Lisa?"
    assert row["trajectory"][1].startswith("Clicked on link ") and row["trajectory"][-1] == "End: Answer"
    assert any(a.startswith("Quote: ") for a in row["trajectory"]) and row["answer"].endswith("[1].")
    assert report["systems"]["script"]["citation_validity"] == 1.0 and report["sources"]["nq"]["script"]


def test_script_needs_a_policy_folder_with_a_reader(corpus, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who wrote Hamlet?", "answers": ["Shakespeare"]}\n')
    with pytest.raises(ValueError, match="needs a policy folder with a reader"):
        evaluate(questions, tmp_path / "report.json", systems=("script",), policy=str(tmp_path))


def test_a_log_with_runs_under_both_rankings_resumes_each_with_its_own_rows(tmp_path):
    from webqa.evaluate import read_log

    log = tmp_path / "report.jsonl"
    rows = [{"system": "script", "question": "q", "answer": "old"},  # logged before rankings were: "pages"
            {"system": "script", "question": "q", "ranking": "passages", "answer": "new"}]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert read_log(log, "pages")[("script", "q")]["answer"] == "old"
    assert read_log(log, "passages")[("script", "q")]["answer"] == "new"
    assert read_log(log)[("script", "q")]["answer"] == "new"  # all rows: the later wins
