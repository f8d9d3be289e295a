"""The agent's sampling knobs in one place: how actions and answers are sampled, and which parts beside the
model (`webqa.policy.rules`) take over what it does poorly.

    SamplingConfig.best_of(4)            # what `webqa.answer` uses for n=4
    SamplingConfig(temperature=0.0, specific_finds=False, clicks="model")   # an ablation
"""

from __future__ import annotations

from dataclasses import dataclass

BEST_OF_TEMPERATURE = 0.7  # the sampled episodes of best-of-n (see `SamplingConfig.best_of`)


@dataclass
class SamplingConfig:
    """How actions and answers are sampled."""

    temperature: float = 0.7  # 0 means greedy
    # The temperature of the reader's choices: whether to quote now and which sentence, and which run of
    # clauses answers. None: `temperature`, which then governs the model's actions and the clicks alone.
    reading_temperature: float | None = None
    # With several episodes, the first is greedy and only the others are sampled: the likeliest episode,
    # the one n=1 gives, stays among the candidates of best-of-n.
    greedy_first: bool = False
    top_p: float = 0.95
    max_action_tokens: int = 48
    max_answer_tokens: int = 96
    seed: int | None = None
    constrained: bool = True  # sample only tokens that keep the line valid (see webqa.policy.constraints)
    # How quotes are chosen:
    # - "reader": the policy's reader (`webqa.policy.reader`, `reader.json` in its folder), where it has
    #   one, decides on every page whether to quote a sentence in view and which; where it does not
    #   quote, the model acts, and a `Quote:` the model writes quotes the sentence the reader ranks first
    #   (the model's line stops at `Quote: `, its words being thrown away). A policy without a reader quotes
    #   as written.
    # - "likelihood": once the model writes `Quote:`, its likelihood (mean log-probability per token)
    #   chooses among the line it wrote and the whole sentences in view.
    # - "written": the line the model wrote.
    quotes: str = "reader"
    # When the model writes `Find in page:`, look for the question's most specific words on the page
    # instead (`specific_find`): the model's needles are mostly single common words, found many times.
    specific_finds: bool = True
    # Every episode starts with `Search <the question>`, and the passage of its top result (the floor,
    # what `rag` reads) is the first passage the answer step reads (`webqa.policy.reading.floor_quote`).
    # On with answers="read" since the trained answerer was measured on dev (results/dev-read.json).
    floor: bool = True
    # How the answer is written from the quotes:
    # - "read": the answerer (`webqa.policy.reading`) reads the floor and the quotes, each with its page's
    #   passage around it, and writes a short answer citing them (the default: on 100 dev questions as
    #   accurate as "extract", 12 to 12, in 2.0 words instead of 21, supported 0.43 against 0.32,
    #   results/dev-read.json); where no answerer is given, as "extract".
    # - "extract": the run of whole clauses of a quoted sentence that the policy's reader ranks first
    #   (`webqa.policy.extractor`); the model writes it where the policy has no reader.
    # - "model": the policy writes it (it mostly copies the first clauses of its first quote).
    answers: str = "read"
    # When the model leaves a page it quoted nothing from (back, a click, a search, the end), the reader
    # takes a last look at what it read there and quotes its best sentence if its probability of quoting
    # exceeds this (None: no last look). The reader was fitted to an expert that never leaves the answer
    # unquoted; leaving, it is now or never.
    last_look: float | None = 0.25
    # Which result a click on a page of search results opens: "reader", the one the reader ranks first by
    # its title and snippet (the model clicks them in order: 0, back, 1, back, 2); "model", the one written.
    clicks: str = "reader"

    @classmethod
    def best_of(cls, n: int, **settings) -> "SamplingConfig":
        """The agent's sampling for n episodes: greedy for one; for several, the first greedy and the rest
        sampled at BEST_OF_TEMPERATURE, so that the candidates differ.

        Why 0.7: the hotter the sampled episodes, the more they differ from the greedy one, and the more
        best-of-n gains over it. Estimated exactly from pools of 8 sampled episodes per question on the 200 dev
        questions (best-of-4 with the greedy episode first, the reward model choosing; greedy alone 0.290):
        0.289 at 0.3, 0.301 at 0.5 and 0.315 at 0.7. Cooler episodes are faster (they more often share a state,
        whose prompt lockstep reads once), but at 0.3 best-of-4 gains nothing over the greedy episode.
        Sampling only the reader's choices while the model navigates greedily (`temperature=0,
        reading_temperature=0.7`) was cheaper but gained nothing either (0.290 both on all 200)."""
        return cls(**({"temperature": 0.0 if n == 1 else BEST_OF_TEMPERATURE, "greedy_first": n > 1} | settings))

    def temperatures(self, n: int) -> list[float]:
        """Each of n episodes' temperature."""
        return [0.0 if self.greedy_first and i == 0 else self.temperature for i in range(n)]

    @property
    def reader_temperature(self) -> float:
        """The temperature of the reader's choices: `reading_temperature`, or `temperature` where unset."""
        return self.temperature if self.reading_temperature is None else self.reading_temperature

    def reading_temperatures(self, n: int) -> list[float]:
        """Each of n episodes' temperature for the reader's choices."""
        return [0.0 if self.greedy_first and i == 0 else self.reader_temperature for i in range(n)]
