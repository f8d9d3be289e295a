"""The committed question sets and the parsing of their source files."""

from collections import defaultdict

from webqa.qa import export_eval_questions, load_questions, parse_topic_line, question_stats
from webqa.scoring import is_correct


def test_parse_the_three_line_formats():
    assert parse_topic_line("who wrote it\t['A. Author', 'Author']") == ("who wrote it", ["A. Author", "Author"])
    assert parse_topic_line('"Which is it, ""this""?"\t"[\'Boxing\', ""Gentleman\'s sport""]"') == (
        'Which is it, "this"?', ["Boxing", "Gentleman's sport"])
    assert parse_topic_line('{"question": "Where?", "answer": ["Here", "Here"]}') == ("Where?", ["Here", "Here"])


def test_committed_questions_have_all_three_sets_and_both_splits():
    rows = {(d, s): (n, a) for d, s, n, a in question_stats()}
    assert set(rows) == {(d, s) for d in ("triviaqa", "nq", "squad") for s in ("train", "dev")}
    assert sum(n for n, _ in rows.values()) > 27_000
    for dataset in ("triviaqa", "nq", "squad"):
        assert rows[(dataset, "dev")][1] >= 200  # enough answerable dev questions to evaluate on


def test_answerable_questions_have_a_gold_answer_in_their_evidence_page(corpus):
    sample = [q for q in load_questions(split="train") if q["evidence"]][:: 500]
    assert len(sample) > 20
    for question in sample:
        assert is_correct_somewhere(corpus.plain_text(question["evidence"]), question["answers"]), question


def is_correct_somewhere(text, answers):
    """Whether any alias occurs in the text, scanning it 40 words at a time like the scorer."""
    words = text.split()
    return any(is_correct(" ".join(words[i : i + 60]), answers) for i in range(0, len(words), 20))


def test_squad_is_split_by_article():
    splits = defaultdict(set)
    for question in load_questions(dataset="squad", answerable=False):
        splits[question["article"]].add(question["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {"train"} in splits.values() and {"dev"} in splits.values()


def test_export_mixes_open_domain_and_squad(tmp_path):
    chosen = export_eval_questions(tmp_path / "dev.jsonl", split="dev", n=40)
    assert len(chosen) == 40 and sum(q["dataset"] == "squad" for q in chosen) == 20
    assert all(q["split"] == "dev" and q["answerable"] for q in chosen)
    assert export_eval_questions(tmp_path / "again.jsonl", split="dev", n=40) == chosen
