"""DAgger: roll out the policy, let the expert label the states it visits, add them, retrain.

    webqa train dagger --demos webqa/data/demos/expert.jsonl.gz --out runs/dagger --n-questions 100 --rounds 3

Behavior cloning only shows the policy the states the expert reaches; once the policy
strays (a wrong click, a useless search) it is somewhere it never saw. Each round here:

1. rolls out the current policy (`run_episodes`, greedy by default) on new train questions
   that the expert itself answers (`--all-questions`: on any);
2. replays every episode and asks the expert (`Expert.label`) for the right action in every
   state the policy visited, and for the answer to write from the policy's quotes;
3. appends the labelled episodes to the aggregated dataset (`labelled.jsonl.gz`);
4. trains on the original demonstrations plus everything aggregated so far, continuing the
   current adapter (or, with --from-base, a fresh LoRA on the base model).

A labelled episode is a `Demonstration` with producer "policy": its steps are the states the
policy visited, each with the expert's action as the action to learn (states the expert had no
action for are left out, as is the answer when the quotes hold no gold answer), so `webqa train bc`
trains on it as on any demonstration. What the policy really did stays in
`settings["dagger"]["policy_steps"]` (its actions replay the episode), with its answer.

Files in --out: `dagger.json` (the finished rounds and their figures), `labelled.jsonl.gz` (the
aggregate, appended per question) and `round-K/` (the policy after round K, a `webqa train bc`
folder). A killed run continues where it stopped: finished rounds are kept, questions already
in the aggregate are not rolled out again, and training resumes from its last checkpoint.

Why continue the adapter rather than retrain from the base each round: on CPU a round's
training budget is a small fraction of an epoch, so retraining from the base would throw away
all earlier training every round; continuing accumulates it, and training on the whole
aggregate (the original demonstrations included) keeps the policy from drifting to the new
states alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import zlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from webqa.demos import append_demonstration, mixed_questions, read_demonstrations, repair
from webqa.env.backend import Backend
from webqa.env.browser import Browser, BrowserSettings, find_quote
from webqa.env.commands import InvalidCommand, parse
from webqa.env.local import LocalCorpus, fts_query
from webqa.env.render import strip_markup
from webqa.loading import SHIPPED_POLICY
from webqa.policy.config import SamplingConfig
from webqa.policy.expert import Expert
from webqa.policy.expert_text import compose_answer
from webqa.policy.prompts import POLICY_BROWSER
from webqa.policy.rollout import run_episodes
from webqa.policy.sampler import load_policy_sampler
from webqa.policy.train import TrainConfig, read_demos, train
from webqa.scoring import is_correct
from webqa.types import Demonstration, Episode, Step


STATE_FILE = "dagger.json"
AGGREGATE_FILE = "labelled.jsonl.gz"


@dataclass
class DaggerConfig:
    """The knobs of a DAgger run."""

    demos: list[str]  # the original demonstrations, trained on every round
    out: str
    policy: str | None = None  # the starting policy folder (a LoRA adapter or a model); None: the base model
    questions_split: str = "train"
    n_questions: int = 100  # rollout questions per round (new ones each round, as long as the split lasts)
    rounds: int = 1
    episodes: int = 1  # rollouts per question, in lockstep
    temperature: float = 0.0  # 0: greedy, as `webqa ask` answers with n=1
    top_p: float = 0.95
    from_base: bool = False  # each round: a fresh LoRA on the base model instead of continuing the adapter
    # How many times each labelled episode counts in training: the aggregate is small next to the
    # original demonstrations, and a round's few hundred CPU steps would barely sample it.
    aggregate_repeats: int = 1
    # Roll out only on questions the expert itself answers. On the others its labels can only say
    # "search again" (it finds no page with the answer), and a round trained on them taught the
    # policy to search in circles: it answered 1 of 30 dev questions, against 27 of 30 before.
    answerable_only: bool = True
    seed: int = 0  # question order and sampling
    browser: BrowserSettings = field(default_factory=lambda: replace(POLICY_BROWSER))
    # Training per round; demos, out, base and init_adapter are set by the round.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=100, batch_size=2, max_length=640, save_steps=25, log_steps=5, eval_share=0.005))


# --- the loop ---------------------------------------------------------------------------


def run_dagger(config: DaggerConfig, questions: list[dict], backend: Backend | None = None,
               progress: bool = True) -> list[dict]:
    """Run the rounds not finished yet on `questions` (records with id, question, answers); returns every
    round's figures."""
    if backend is None:

        backend = LocalCorpus.default()
    if not questions:
        raise ValueError("no rollout questions")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    aggregate = out / AGGREGATE_FILE
    repair(aggregate)  # a record cut off by a kill
    state = _load_state(out, config)
    expert = Expert(backend, config.browser)
    pending = range(len(state["rounds"]) + 1, config.rounds + 1)
    if pending and config.answerable_only:  # a finished run does not run the expert again
        questions = answerable(questions, expert, config.rounds * config.n_questions, progress)
        if not questions:
            raise ValueError("the expert answers none of the rollout questions")
    for round_ in pending:
        policy = state["rounds"][-1]["policy"] if state["rounds"] else config.policy
        chosen = round_questions(questions, round_, config.n_questions)
        roll_out_round(config, round_, policy, chosen, expert, aggregate, progress)
        figures = round_figures(aggregate, round_)
        summary = train_round(config, round_, policy, aggregate)
        state["rounds"].append({"round": round_, "policy_in": policy, "policy": str(out / f"round-{round_}"),
                                **figures, "train_steps": summary["steps"], "train_loss": summary["train_loss"],
                                "eval_loss": summary["eval_loss"],
                                "train_demonstrations": summary["demonstrations"]["train"]})
        _save_state(out, state)
    return state["rounds"]


def answerable(questions: list[dict], expert: Expert, needed: int, progress: bool = True) -> list[dict]:
    """The first `needed` questions (in order) that the expert answers from the encyclopedia."""
    found = []
    bar = tqdm(total=needed, desc="questions the expert answers", unit="question", disable=not progress)
    for record in questions:
        if len(found) >= needed:
            break
        if expert.demonstrate(record["question"], list(record["answers"]), random.Random(0)) is not None:
            found.append(record)
            bar.update(1)
    bar.close()
    return found


def round_questions(questions: list[dict], round_: int, n: int) -> list[dict]:
    """The round's questions: the next n of the pool, wrapping around when it runs out."""
    start = (round_ - 1) * n
    return [questions[(start + i) % len(questions)] for i in range(min(n, len(questions)))]


def roll_out_round(config: DaggerConfig, round_: int, policy: str | None, questions: list[dict], expert: Expert,
                   aggregate: Path, progress: bool = True) -> None:
    """Roll out `policy` on the questions not in the aggregate yet, label the episodes, append them."""
    done = {(d.settings["question_id"], d.settings["dagger"]["episode"])
            for d in _round_demos(aggregate, round_)}
    todo = [r for r in questions if any((r["id"], k) not in done for k in range(config.episodes))]
    bar = tqdm(total=len(questions), initial=len(questions) - len(todo), desc=f"round {round_}: rollouts",
               unit="question", disable=not progress)
    if todo:
        sampler = load_policy_sampler(policy)
        for record in todo:
            episodes = roll_out(sampler, expert.backend, record, config, round_)
            for index, episode in enumerate(episodes):
                if (record["id"], index) not in done:  # a run killed mid-question wrote some already
                    append_demonstration(aggregate, labelled_demonstration(expert, episode, record, round_, index,
                                                                           policy))
            bar.update(1)
    bar.close()


def roll_out(sampler, backend: Backend, record: dict, config: DaggerConfig, round_: int) -> list[Episode]:
    """The policy's episodes on one question (seeded: a resumed run samples the same ones)."""

    seed = zlib.crc32(f"{config.seed}:{round_}:{record['id']}".encode())
    # The navigation is what DAgger corrects; the floor's forced first search would only repeat the
    # expert's own first action, and the answer step is trained apart (`webqa train answer`).
    sampling = SamplingConfig(temperature=config.temperature, top_p=config.top_p, seed=seed, floor=False,
                              answers="extract")
    browsers = [Browser(backend, replace(config.browser)) for _ in range(config.episodes)]
    return run_episodes(sampler, browsers, record["question"], sampling)


def train_round(config: DaggerConfig, round_: int, policy: str | None, aggregate: Path) -> dict:
    """Train on the original demonstrations and the aggregate; a round trained already is read back."""
    out = Path(config.out) / f"round-{round_}"
    if (out / "training.json").exists():  # written last by train(): the round's training is complete
        return json.loads((out / "training.json").read_text(encoding="utf-8"))
    start = config.policy if config.from_base else policy
    base, adapter = policy_parts(start)
    return train(replace(config.train, demos=[*config.demos, str(aggregate)], out=str(out), base=base,
                         demo_repeats=(1,) * len(config.demos) + (config.aggregate_repeats,),
                         init_adapter=None if config.from_base else adapter))


def policy_parts(policy: str | None) -> tuple[str | None, str | None]:
    """(base model, LoRA adapter folder or None) of a policy folder; None is the default base model."""
    if policy is None:
        return None, None
    adapter_config = Path(policy) / "adapter_config.json"
    if adapter_config.exists():
        return json.loads(adapter_config.read_text(encoding="utf-8"))["base_model_name_or_path"], str(policy)
    return str(policy), None


# --- labelling ----------------------------------------------------------------------------


def label_episode(expert: Expert, episode: Episode, gold: list[str]) -> list[tuple[str | None, bool]]:
    """For each state the episode visited: the expert's action (None: it sees no way on) and whether
    the episode's own action there agrees with it.

    The states are rebuilt by replaying the episode's actions in a fresh browser; each must show
    the observation the policy saw.
    """
    settings = BrowserSettings(**{f: episode.settings[f] for f in asdict(expert.settings) if f in episode.settings})
    browser = Browser(expert.backend, settings)
    browser.reset(episode.question)
    labels = []
    for number, step in enumerate(episode.steps, start=1):
        if browser.observation() != step.observation:
            raise ValueError(f"replaying {episode.question!r}: state {number} differs from the one the policy saw")
        right = expert.label(browser, episode.question, gold)
        labels.append((right, right is not None and same_action(step.action, right, browser)))
        browser.step(step.action, by=step.by, proposed=step.proposed)
    return labels


def same_action(action: str, right: str, browser: Browser) -> bool:
    """Whether `action` does what `right` does in the browser's state: the same command, a search
    with the same words, a quote of the same passage."""
    try:
        mine, theirs = parse(action), parse(right)
    except InvalidCommand:
        return False
    if mine.kind != theirs.kind:
        return False
    if mine.kind == "search":
        return set(fts_query(mine.arg).split(" OR ")) == set(fts_query(theirs.arg).split(" OR "))
    if mine.kind == "quote" and browser.page is not None:
        text = " ".join(browser.page.plain_lines)
        quoted = find_quote(strip_markup(mine.arg), text)
        return quoted is not None and quoted == find_quote(strip_markup(theirs.arg), text)
    return " ".join(mine.arg.lower().split()) == " ".join(theirs.arg.lower().split())


def labelled_demonstration(expert: Expert, episode: Episode, record: dict, round_: int, index: int,
                           policy: str | None) -> Demonstration:
    """The policy's episode as a demonstration to learn from: its states with the expert's actions."""
    gold = list(record["answers"])
    labels = label_episode(expert, episode, gold)
    steps = [Step(step.observation, right, by="expert") for step, (right, _) in zip(episode.steps, labels)
             if right is not None]
    # The answer to learn: the expert's, written from the policy's quotes (None when they hold no gold answer).
    answer = compose_answer(episode.quotes, gold, episode.question) if episode.quotes else None
    success = bool(episode.answer) and is_correct(episode.answer, gold)
    dagger = {
        "round": round_, "episode": index, "labels": "expert", "success": success,
        "visited": len(episode.steps), "labelled": len(steps), "agreed": sum(agree for _, agree in labels),
        "policy_steps": [{"action": s.action, "error": s.error, "label": right}
                         for s, (right, _) in zip(episode.steps, labels)],
        "policy_answer": episode.answer,
    }
    return Demonstration(
        question=episode.question, steps=steps, quotes=episode.quotes, final_observation=episode.final_observation,
        end=episode.end, answer=answer, answered_by="expert" if answer else "", producer="policy",
        model=str(policy) if policy else "base",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), gold_answers=gold,
        settings={**episode.settings, "question_id": record["id"], "dataset": record.get("dataset"),
                  "dagger": dagger},
    )


# --- figures and state ----------------------------------------------------------------------


def _round_demos(aggregate: Path, round_: int) -> list[Demonstration]:
    if not aggregate.exists():
        return []
    return [d for d in read_demonstrations(aggregate) if d.settings.get("dagger", {}).get("round") == round_]


def round_figures(aggregate: Path, round_: int) -> dict:
    """A round's figures, counted from its episodes in the aggregate (so a resumed round counts them all)."""
    demos = _round_demos(aggregate, round_)
    marks = [d.settings["dagger"] for d in demos]
    labelled = sum(m["labelled"] for m in marks)
    return {
        "questions": len({d.settings["question_id"] for d in demos}),
        "episodes": len(marks),
        "success": sum(m["success"] for m in marks) / (len(marks) or 1),
        "visited": sum(m["visited"] for m in marks),
        "labelled": labelled,
        "agreement": sum(m["agreed"] for m in marks) / (labelled or 1),
    }


def _load_state(out: Path, config: DaggerConfig) -> dict:
    path = out / STATE_FILE
    if not path.exists():
        return {"config": asdict(config), "rounds": []}
    state = json.loads(path.read_text(encoding="utf-8"))
    before = {k: state["config"].get(k) for k in ("n_questions", "episodes", "seed", "questions_split", "policy",
                                                   "answerable_only")}
    now = {k: asdict(config)[k] for k in before}
    if before != now:
        print(f"warning: {path} was started with {before}; going on with {now}", file=sys.stderr)
    return state


def _save_state(out: Path, state: dict) -> None:
    """Write the state file whole or not at all (a kill mid-write keeps the previous one)."""
    partial = out / f"{STATE_FILE}.partial"
    partial.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, out / STATE_FILE)


def results_table(rounds: list[dict]) -> str:
    """The rounds' figures as a small text table."""
    header = (f"{'round':>5}{'questions':>10}{'episodes':>9}{'success':>9}{'states':>8}{'labelled':>9}"
              f"{'agree':>7}{'steps':>7}{'loss':>7}")
    lines = [header]
    for r in rounds:
        loss = "-" if r["train_loss"] is None else f"{r['train_loss']:.3f}"
        lines.append(f"{r['round']:>5}{r['questions']:>10}{r['episodes']:>9}{r['success']:>9.0%}{r['visited']:>8}"
                     f"{r['labelled']:>9}{r['agreement']:>7.0%}{r['train_steps']:>7}{loss:>7}")
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------


def question_pool(split: str, seed: int, covered: set[str]) -> list[dict]:
    """The split's answerable questions, open-domain and SQuAD alternating, after the last one in `covered`.

    `webqa demos` goes through each group in this order, so the questions before the last covered
    one were mostly tried already, and those left without a demonstration are ones the expert failed on.
    """
    groups = mixed_questions(split, seed)
    pool = [r for pair in itertools.zip_longest(groups["open-domain"], groups["squad"]) for r in pair if r]
    last = max((index for index, r in enumerate(pool) if r["id"] in covered), default=-1)
    return pool[last + 1:]


def main(argv: list[str] | None = None) -> int:
    """`webqa train dagger`: DAgger rounds of rollouts, expert labels and behavior cloning."""

    d = DaggerConfig(demos=[], out="")
    t = d.train
    shipped = str(SHIPPED_POLICY) if (SHIPPED_POLICY / "adapter_config.json").exists() else None
    parser = argparse.ArgumentParser(prog="webqa train dagger", description=main.__doc__)
    parser.add_argument("--policy", default=shipped, metavar="DIR",
                        help=f"the policy to start from (default: the shipped one, {shipped})")
    parser.add_argument("--demos", nargs="+", required=True, metavar="FILE",
                        help="the original demonstrations, trained on with the aggregate every round")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (a run there resumes)")
    parser.add_argument("--questions-split", default=d.questions_split)
    parser.add_argument("--n-questions", type=int, default=d.n_questions, help="rollout questions per round")
    parser.add_argument("--rounds", type=int, default=d.rounds)
    parser.add_argument("--episodes", type=int, default=d.episodes, help="rollouts per question")
    parser.add_argument("--temperature", type=float, default=d.temperature, help="0: greedy")
    parser.add_argument("--top-p", type=float, default=d.top_p)
    parser.add_argument("--from-base", action="store_true", help="retrain a fresh LoRA on the base every round")
    parser.add_argument("--aggregate-repeats", type=int, default=d.aggregate_repeats,
                        help="times each labelled episode counts in training, next to the demonstrations' once")
    parser.add_argument("--all-questions", action="store_true",
                        help="also roll out on questions the expert cannot answer (it labels them 'search again')")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--window-lines", type=int, default=d.browser.window_lines)
    parser.add_argument("--max-actions", type=int, default=d.browser.max_actions)
    training = parser.add_argument_group("training per round (as webqa train bc)")
    training.add_argument("--max-steps", type=int, default=t.max_steps)
    training.add_argument("--batch-size", type=int, default=t.batch_size)
    training.add_argument("--max-length", type=int, default=t.max_length)
    training.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-4 LoRA)")
    training.add_argument("--save-steps", type=int, default=t.save_steps)
    training.add_argument("--log-steps", type=int, default=t.log_steps)
    training.add_argument("--eval-share", type=float, default=t.eval_share)
    training.add_argument("--train-layers", type=int, default=t.train_layers, metavar="K",
                          help="train only the top K layers (faster steps; default: all)")
    args = parser.parse_args(argv)

    config = DaggerConfig(
        demos=args.demos, out=args.out, policy=args.policy, questions_split=args.questions_split,
        n_questions=args.n_questions, rounds=args.rounds, episodes=args.episodes, temperature=args.temperature,
        top_p=args.top_p, from_base=args.from_base, aggregate_repeats=args.aggregate_repeats,
        answerable_only=not args.all_questions, seed=args.seed,
        browser=replace(POLICY_BROWSER, window_lines=args.window_lines, max_actions=args.max_actions),
        train=replace(t, max_steps=args.max_steps, batch_size=args.batch_size, max_length=args.max_length,
                      learning_rate=args.lr, save_steps=args.save_steps, log_steps=args.log_steps,
                      eval_share=args.eval_share, train_layers=args.train_layers),
    )
    # Questions the original demonstrations were made from are left out: every round rolls out on new ones.
    covered = {demo.settings.get("question_id") for demo in read_demos(config.demos)}
    pool = question_pool(config.questions_split, config.seed, covered)
    rounds = run_dagger(config, pool)
    print(results_table(rounds))
    print(f"policy after round {rounds[-1]['round']}: {rounds[-1]['policy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
