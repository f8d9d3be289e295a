"""Expert iteration: distil best-of-n back into the policy, then measure best-of-1.

    webqa train iterate --out runs/iter1 --limit 500 --n 4 [--pool FILE] [--reward DIR] [--policy DIR] \\
        [--dev dev200.jsonl --dev-limit 200] [behavior-cloning options: --max-steps 300 --repeat 1 3 ...]

Three stages, each resumable (run the same command again), `--stages` picks some:

1. `sample`: the policy samples n episodes for each of `--limit` `train` questions (a
   seeded shuffle); the reward model picks one. Picks that end with `End: Answer`
   and have only well-formed actions become demonstrations (producer "policy") in
   `out/demos.jsonl.gz`; every pool goes to `out/pool.jsonl` (a candidates file).
   With `--pool FILE` (a candidates file of `train` questions from `webqa sample`)
   nothing is sampled: the reward model scores that pool, and each pick's actions
   are replayed in the browser for the observations the policy saw.
2. `bc`: behavior cloning from the base model (or, with `--init-adapter DIR`,
   from that policy) on the old demonstrations (`--demos`, by default the shipped
   expert ones) plus the new ones, into `out/bc`. Options this command does not
   know are `webqa train bc`'s (`--repeat 1 3` counts the new ones thrice).
3. `eval`: best-of-1 (greedy) of the old and the new policy on the same dev
   questions (`webqa eval --systems policy`), into `out/eval-before.json` and
   `out/eval-after.json`, printed side by side.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from webqa import qa
from webqa.demos import EXPERT_FILE, append_demonstration, read_demonstrations
from webqa.env.browser import Browser, replay
from webqa.env.commands import InvalidCommand, parse
from webqa.evaluate import evaluate
from webqa.loading import load_reward, load_sampler, make_backend
from webqa.policy import train as bc
from webqa.policy.prompts import POLICY_BROWSER
from webqa.qa import load_questions
from webqa.records import append_record
from webqa.reward.model import choose
from webqa.reward.pool import PoolConfig, PoolRecord, read_pool, sample_pool, score_pool
from webqa.types import Demonstration, Episode, Step


STAGES = ("sample", "bc", "eval")


def is_clean(episode: Episode) -> bool:
    """An episode worth imitating: it ended with an answer, and every action was a well-formed command."""
    if episode.end != "Answer" or not episode.answer or not episode.quotes:
        return False
    try:
        for action in episode.actions:
            parse(action)
    except InvalidCommand:
        return False
    return True


def demonstration_of(episode: Episode, item: dict, policy: str) -> Demonstration:
    demo = Demonstration(**{f.name: getattr(episode, f.name) for f in fields(Episode)}, producer="policy",
                         model=policy, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         gold_answers=list(item.get("answers") or []))
    demo.settings = {**episode.settings, "question_id": item.get("id"), "selected_by": "reward model"}
    return demo


def sample_stage(args: argparse.Namespace, out: Path) -> dict:
    """Best-of-n on train questions; the reward model's clean picks become demonstrations."""

    reward_model = load_reward(args.reward)
    if reward_model is None:
        raise ValueError("expert iteration needs a reward model: none is shipped; pass --reward DIR "
                         "(train one with `webqa train rm`)")
    policy_name = args.policy or "shipped"
    kept = {"picked": 0, "clean": 0}

    def keep(item: dict, episode: Episode) -> None:
        kept["picked"] += 1
        if is_clean(episode):
            kept["clean"] += 1
            append_demonstration(out / "demos.jsonl.gz", demonstration_of(episode, item, policy_name))

    if args.pool:
        return pool_picks(read_pool(args.pool)[: args.limit], out / "pool.jsonl", reward_model, keep,
                          args.reward or "shipped") | kept

    def keep_pick(item: dict, episodes: list[Episode], record: PoolRecord) -> None:
        pick = choose([c.score for c in record.candidates])
        if pick is not None:
            keep(item, episodes[pick])

    questions = load_questions(split="train")
    random.Random(args.seed).shuffle(questions)
    stats = sample_pool(questions[: args.limit], out / "pool.jsonl", PoolConfig(n=args.n, seed=args.seed),
                        load_sampler(args.policy), make_backend("local"), reward_model=reward_model,
                        policy_name=policy_name, reward_name=args.reward or "shipped", on_episodes=keep_pick)
    return stats | kept


def pool_picks(records: list[PoolRecord], out: Path, reward_model, keep: Callable[[dict, Episode], None],
               reward_name: str) -> dict:
    """The sample stage on a pool sampled before: score it, replay each pick, `keep(item, episode)` it.

    Scored records go to `out` (resuming by question). A pick whose replay does not end as it was
    recorded (the corpus changed since) is skipped and counted.
    """

    done = {r.question for r in read_pool(out)} if out.exists() else set()
    todo = [r for r in records if r.question not in done]
    browser = Browser(make_backend("local"), POLICY_BROWSER)
    stats = {"questions": len(records), "already_done": len(records) - len(todo), "sampled": 0,
             "replay_mismatches": 0}
    for record in tqdm(todo, desc=f"scoring and replaying -> {out.name}", unit="q"):
        for candidate, value in zip(record.candidates, score_pool(reward_model, record.question, record.candidates)):
            candidate.score = value
        record.reward_model = reward_name
        pick = choose([c.score for c in record.candidates])
        if pick is not None:
            chosen = record.candidates[pick]
            recorded = Episode(question=record.question, steps=[Step("", a) for a in chosen.actions],
                               answer=chosen.text)
            episode = replay(recorded, browser)
            if episode.end == chosen.end and [q.text for q in episode.quotes] == [q.text for q in chosen.quotes]:
                keep({"id": record.id, "answers": record.answers}, episode)
            else:
                stats["replay_mismatches"] += 1
        append_record(out, record.to_dict())
        stats["sampled"] += 1
    return stats


def new_demonstrations(path: Path) -> list[Demonstration]:
    """The stage's demonstrations, one per question (a killed run may have written a question twice)."""
    if not path.exists():
        return []
    unique = {}
    for demo in read_demonstrations(path):
        unique.setdefault(demo.settings.get("question_id") or demo.question, demo)
    return list(unique.values())


def bc_stage(args: argparse.Namespace, bc_options: list[str], out: Path) -> dict:
    """Behavior cloning on the old demonstrations plus the new ones."""

    merged = out / "new-demos.jsonl"  # deduplicated copy of the new demonstrations, rewritten each run
    merged.unlink(missing_ok=True)
    new = new_demonstrations(out / "demos.jsonl.gz")
    for demo in new:
        append_record(merged, demo.to_dict())
    files = list(args.demos) + ([str(merged)] if new else [])
    parser = bc.add_arguments(argparse.ArgumentParser(prog="webqa train iterate (bc options)"))
    # The iteration's seed seeds behavior cloning too (its own --seed would be taken by this command's).
    config = bc.config_from_args(parser.parse_args(["--demos", *files, "--out", str(out / "bc"),
                                                    "--seed", str(args.seed), *bc_options]))
    summary = bc.train(config)
    return {"new demonstrations": len(new), "steps": summary["steps"], "train_loss": summary["train_loss"]}


def eval_stage(args: argparse.Namespace, out: Path) -> dict:
    """Best-of-1 accuracy of the policy before and after, on the same dev questions."""

    dev = Path(args.dev) if args.dev else out / "dev.jsonl"
    if not args.dev and not dev.exists():
        qa.export_eval_questions(dev, split="dev", n=args.dev_limit or 200)
    figures = {}
    for name, policy in (("before", args.policy), ("after", str(out / "bc"))):
        report = evaluate(dev, out / f"eval-{name}.json", n=1, limit=args.dev_limit, systems=("policy",),
                          policy=policy)
        figures[name] = report["systems"]["policy"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webqa train iterate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, metavar="DIR", help="the iteration's folder (resumes)")
    parser.add_argument("--policy", help="the policy to improve (default: the shipped one)")
    parser.add_argument("--reward", help="the reward model (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=500, help="train questions to sample")
    parser.add_argument("--n", type=int, default=4, help="episodes per question (best-of-n)")
    parser.add_argument("--pool", metavar="FILE", help="a pool of train questions sampled before (`webqa sample`): "
                        "score and replay it instead of sampling")
    parser.add_argument("--demos", nargs="+", default=[str(EXPERT_FILE)], metavar="FILE",
                        help="the old demonstrations (default: the shipped expert ones)")
    parser.add_argument("--dev", metavar="FILE", help="dev questions (default: webqa qa export --split dev)")
    parser.add_argument("--dev-limit", type=int, default=200, help="dev questions to evaluate")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--seed", type=int, default=0, help="the questions' shuffle, the sampling, behavior cloning")
    args, bc_options = parser.parse_known_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {', '.join(sorted(unknown))}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if "sample" in stages:
        stats = sample_stage(args, out)
        print(f"sample: {stats['sampled']} questions {'scored' if args.pool else 'sampled'} "
              f"({stats['already_done']} already done), "
              f"{stats['picked']} picks, {stats['clean']} clean ones kept as demonstrations"
              + (f", {stats['replay_mismatches']} picks that did not replay" if stats.get("replay_mismatches") else ""))
    if "bc" in stages:
        stats = bc_stage(args, bc_options, out)
        print(f"bc: {stats['new demonstrations']} new demonstrations, {stats['steps']} steps, "
              f"train loss {stats['train_loss']:.3f}; policy in {out / 'bc'}")
    elif bc_options:
        parser.error(f"unrecognized arguments: {' '.join(bc_options)}")
    if "eval" in stages:
        figures = eval_stage(args, out)
        print(f"{'best-of-1':<20}{'before':>10}{'after':>10}")
        for key in ("accuracy", "supported", "answered", "invalid_action_rate"):
            print(f"{key:<20}{figures['before'].get(key, 0):>10.3f}{figures['after'].get(key, 0):>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
