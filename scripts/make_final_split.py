"""Draw the frozen `final` split once, and re-split SQuAD by the article each question was written on.

    .venv/bin/python scripts/make_final_split.py [--seed 2026]

Run once, on 2026-12-03, on the questions file as it was then (SQuAD split by the article search ranked
first, no `final`); it refuses to run on a file that has a `final` split already, and `webqa qa build`
keeps the drawn questions. What it draws from is what no earlier development used:

- open-domain: answerable TriviaQA and NQ questions of the old `dev` split (never trained on) that no
  shipped data file (demonstrations, pools, comparisons; now partly in `results/`) holds and that are not in the dev evaluation
  sets development exported (`qa export --split dev --n 200` and `--n 400`, seed 0); 300 of them, in
  the two sets' natural shares (their shares of all answerable open-domain questions);
- SQuAD: the articles at least FINAL_ARTICLE_SHARE of whose questions sat in the old `dev` split (so
  training hardly saw them), their questions no data file or dev export used; 200 of them. The rest of
  those articles' questions go to `reserve` (`webqa.qa.assign_splits`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from webqa import qa
from webqa.corpus_sources import read_squad_question_articles
from webqa.paths import DATA_DIR
from webqa.pypi import download, downloads_dir

FINAL_OPEN_DOMAIN, FINAL_SQUAD = 300, 200
FINAL_ARTICLE_SHARE = 0.8


def used_questions(records: list[dict]) -> set[str]:
    """Questions some development run used: in a shipped data or results file, or in the exported dev sets."""
    used = set()
    # The pools and comparisons were in the package's data when this ran; they now live in results/.
    results = Path(__file__).resolve().parent.parent / "results"
    for path in [*DATA_DIR.rglob("*.jsonl.gz"), *results.rglob("*.jsonl.gz")]:
        if path.name in ("questions.jsonl.gz", "corpus.jsonl.gz"):
            continue
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                question = record.get("question") or (record.get("episode") or {}).get("question")
                if isinstance(question, str):
                    used.add(question)
    with tempfile.TemporaryDirectory() as folder:
        for n in (200, 400):
            used |= {r["question"] for r in qa.export_eval_questions(Path(folder) / "dev.jsonl", "dev", n, 0)}
    return used


def draw_final(records: list[dict], used: set[str], seed: int) -> set[str]:
    """The ids of the final questions (records carry the old `split` and the true `article`)."""
    rng = random.Random(seed)
    answerable_od = Counter(r["dataset"] for r in records if r["dataset"] != "squad" and r["answerable"])
    chosen = []
    for dataset in sorted(answerable_od):
        share = answerable_od[dataset] / sum(answerable_od.values())
        count = round(FINAL_OPEN_DOMAIN * share) if dataset != max(answerable_od) else None
        pool = [r for r in records if r["dataset"] == dataset and r["split"] == "dev" and r["answerable"]
                and r["question"] not in used]
        chosen.append((dataset, pool, count))
    fixed = sum(count for _, _, count in chosen if count is not None)
    final = []
    for dataset, pool, count in chosen:
        final += rng.sample(pool, FINAL_OPEN_DOMAIN - fixed if count is None else count)
    by_article = defaultdict(list)
    for record in records:
        if record["dataset"] == "squad":
            by_article[record["article"]].append(record)
    articles = sorted(a for a, rs in by_article.items()
                      if a and sum(r["split"] == "dev" for r in rs) >= FINAL_ARTICLE_SHARE * len(rs))
    pool = [r for a in articles for r in by_article[a] if r["answerable"] and r["question"] not in used]
    final += rng.sample(pool, FINAL_SQUAD)
    print(f"final SQuAD articles: {', '.join(articles)}", file=sys.stderr)
    return {r["id"] for r in final}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    records = qa.load_questions(answerable=False)
    if any(r["split"] == "final" for r in records):
        print("the questions file has a final split already: it is frozen", file=sys.stderr)
        return 1
    used = used_questions(records)
    titles = read_squad_question_articles(download(qa.BIGBENCH, downloads_dir()))
    squad = [r for r in records if r["dataset"] == "squad"]
    for record, article in zip(squad, qa.squad_articles([r["question"] for r in squad], titles)):
        record["article"] = article
    final = draw_final(records, used, args.seed)
    qa.assign_splits(records, final)
    qa.write_questions(records)
    for row in qa.question_stats():
        print(*row, sep="\t")
    return 0


if __name__ == "__main__":
    sys.exit(main())
