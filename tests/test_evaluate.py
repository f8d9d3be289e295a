"""The evaluation harness: scoring, the BM25 baseline, resuming, the report table."""

import json

import pytest

from webqa.evaluate import best_sentence, evaluate, format_report, read_questions, score


def test_score_counts_correct_supported_cited_and_invalid():
    record = {"answer": "It is the Danube [1].", "quotes": ["Vienna lies on the Danube."],
              "actions": ["Search Vienna", "Clicked on link 0", "click it!", "End: Answer"], "seconds": 1.0}
    figures = score(record, ["Danube"])
    assert figures == {"correct": True, "supported": True, "citations_valid": True, "answered": True,
                       "words": 4, "actions": 4, "invalid_actions": 1}
    wrong = score({**record, "answer": "The Rhine [2]."}, ["Danube"])
    assert not wrong["correct"] and not wrong["supported"] and not wrong["citations_valid"]
    uncited = score({**record, "answer": "The Danube."}, ["Danube"])
    assert uncited["correct"] and not uncited["supported"] and not uncited["citations_valid"]


def test_best_sentence_prefers_the_most_overlap():
    text = "Vienna is a city. The Danube flows through Vienna and Budapest. Rivers are wet."
    assert best_sentence("Which river flows through Vienna?", text) == "The Danube flows through Vienna and Budapest."


def test_questions_file_must_have_question_and_answers(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "x", "answers": ["y"]}\n{"question": "z"}\n')
    with pytest.raises(ValueError, match="q.jsonl:2"):
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
    with pytest.raises(ValueError, match="unknown system policy-free: choose from policy, policy-unconstrained"):
        evaluate(questions, tmp_path / "report.json", systems=("bm25-sentence", "policy-free"))
    assert not (tmp_path / "report.jsonl").exists()
