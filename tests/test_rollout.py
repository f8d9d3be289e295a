"""Batched lockstep sampling: exactness against `generate`, shared prefill, whole episodes."""

import warnings
from types import SimpleNamespace

import pytest
import torch

from webqa.env import Browser, BrowserSettings
from webqa.policy.constraints import ActionGrammar
from webqa.policy.prompts import action_example
from webqa.policy.config import BEST_OF_TEMPERATURE, SamplingConfig
from webqa.policy.rollout import run_episodes
from webqa.policy.rules import choose_quote, shared_searches
from webqa.policy.sampler import Sampler, cache_keyword, output_cache
from webqa.text import quote_action, sentences_in_view


@pytest.fixture(scope="module")
def tiny(tiny_policy):
    return tiny_policy


def reference_lines(model, tokenizer, prompts, max_new_tokens, stop_ids):
    """Greedy continuations from `model.generate`, cut at the first stop token."""
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
    lines = []
    for row in output[:, batch["input_ids"].shape[1]:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in stop_ids), len(row))  # with the stop token:
        line = tokenizer.decode(row[:cut], skip_special_tokens=True)  # it may hold text before its newline
        lines.append(line.split("\n")[0].strip())
    return lines


def test_greedy_sampling_matches_generate_on_prompts_of_different_lengths(tiny):
    model, tokenizer = tiny
    sampler = Sampler(model, tokenizer)
    prompts = ["The Danube flows through", "Vienna", "In 1453 the city of Istanbul was taken by the Ottoman army"]
    lines = sampler.sample(prompts, max_new_tokens=12, temperature=0)
    assert lines == reference_lines(model, tokenizer, prompts, 12, set(sampler.stop_ids.tolist()))
    assert any(lines)



class OldCacheKeyword(torch.nn.Module):
    """The tiny model as transformers before 5 called it: the KV cache in and out as `past_key_values`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None,
                logits_to_keep=0):
        cache = {cache_keyword(self.model): past_key_values}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=use_cache, logits_to_keep=logits_to_keep, **cache)
        return SimpleNamespace(logits=out.logits, past_key_values=output_cache(out))


def test_the_sampler_passes_its_cache_under_the_name_the_model_takes(tiny):
    model, tokenizer = tiny
    prompts = ["The Danube flows through", "Vienna", "The Danube flows through"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # transformers' deprecated `past_key_values` would raise
        lines = Sampler(model, tokenizer).sample(prompts, max_new_tokens=8, temperature=0)
    old = Sampler(OldCacheKeyword(model), tokenizer)
    assert old._cache_keyword == "past_key_values"
    assert old.sample(prompts, max_new_tokens=8, temperature=0) == lines and any(lines)

def test_prompts_read_one_by_one_decode_as_the_padded_batch_does(tiny):
    model, tokenizer = tiny
    prompts = ["The Danube flows through", "Vienna", "In 1453 the city of Istanbul was taken by the Ottoman army",
               "Vienna"]
    batch, alone = Sampler(model, tokenizer, prefill="batch"), Sampler(model, tokenizer, prefill="one by one")
    lines = alone.sample(prompts, max_new_tokens=10, temperature=0)
    assert lines == batch.sample(prompts, max_new_tokens=10, temperature=0) and any(lines)
    assert alone.prefill == "one by one"  # the tiny Llama's cache could be joined
    assert alone.stats.prefill_padded_tokens == alone.stats.prefill_tokens == batch.stats.prefill_tokens
    assert batch.stats.prefill_padded_tokens > batch.stats.prefill_tokens  # 3 distinct prompts padded to the longest
    auto = Sampler(model, tokenizer, prefixes=None)  # on CPU: one by one where padding would add more than 15%
    assert auto._reads_one_by_one([1, 12]) and not auto._reads_one_by_one([100, 110])


def test_identical_prompts_are_prefilled_once(tiny):
    model, tokenizer = tiny
    sampler = Sampler(model, tokenizer)
    prompt = "The Danube is a river in Europe"
    lines = sampler.sample([prompt] * 4 + ["Vienna"], max_new_tokens=6, temperature=0)
    length = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert sampler.stats.prefill_tokens == length + len(tokenizer("Vienna", add_special_tokens=False)["input_ids"])
    assert len(set(lines[:4])) == 1
    assert lines[:4] == sampler.sample([prompt], max_new_tokens=6, temperature=0) * 4


def test_prompts_with_the_same_line_so_far_share_a_decoding_row_until_they_draw_apart(tiny):
    model, tokenizer = tiny
    prompt = "The Danube is a river in Europe"
    # The first two rows decode alike; the third is held to a grammar, so it draws apart at its first token
    # and then reads forced tokens in chunks of their own.
    grammars = [None, None, ActionGrammar(fixed=["Scrolled down 1", "Scrolled down 2"], free=[])]
    sampler = Sampler(model, tokenizer)
    lines = sampler.sample([prompt] * 3, max_new_tokens=10, temperature=0, grammars=grammars)
    alone = [Sampler(model, tokenizer).sample([prompt], 10, temperature=0, grammars=[g])[0] for g in grammars]
    assert lines == alone and lines[0] != lines[2]
    assert sampler.stats.decode_rows_read < sampler.stats.decode_tokens  # the first two read one row


def test_a_prompt_starting_like_an_earlier_one_is_read_from_its_cache_and_decodes_the_same(tiny):
    model, tokenizer = tiny
    start = "The Danube is a river in Europe. It flows through Vienna, Budapest and Belgrade to the Black Sea.\n"
    steps = [[start + "Vienna"], [start + "In 1453 the city of Istanbul was taken", start + "Einstein was born"]]
    cached, fresh = Sampler(model, tokenizer), Sampler(model, tokenizer, prefixes=None)
    for prompts in steps:  # two calls, as two browsing steps: the second call's prompts start like the first's
        assert cached.sample(prompts, 10, temperature=0) == fresh.sample(prompts, 10, temperature=0)
    shared = len(tokenizer(start, add_special_tokens=False)["input_ids"])
    assert shared >= 16  # long enough to be reused
    # Both prompts of the second call reuse at least the shared start (the second may reuse it from the first).
    assert cached.stats.prefill_reused_tokens >= 2 * (shared - 1)
    assert cached.stats.prefill_padded_tokens == fresh.stats.prefill_tokens - cached.stats.prefill_reused_tokens
    assert fresh.stats.prefill_reused_tokens == 0 and cached.stats.prefill_tokens == fresh.stats.prefill_tokens


def test_a_reused_start_gives_the_logits_of_reading_the_whole_prompt(tiny):
    model, tokenizer = tiny
    sampler = Sampler(model, tokenizer)
    first = tokenizer("Albert Einstein was a theoretical physicist who developed the theory of relativity",
                      add_special_tokens=False)["input_ids"]
    second = first[:-3] + tokenizer(" and quantum mechanics", add_special_tokens=False)["input_ids"]
    sampler._prefill_one_by_one([first])
    _, logits, _ = sampler._prefill_one_by_one([second, first])
    assert sampler.stats.prefill_reused_tokens == (len(first) - 3) + (len(first) - 1)
    with torch.no_grad():
        whole = torch.cat([model(torch.tensor([ids])).logits[:, -1] for ids in (second, first)])
    assert torch.allclose(logits, whole, atol=1e-4)
    # What the first call kept is untouched by the second call's decoding.
    assert sampler.sample(["Vienna"], 5, temperature=0) == Sampler(model, tokenizer).sample(["Vienna"], 5, 0)


def test_score_is_each_lines_log_probability_read_whole(tiny):
    model, tokenizer = tiny
    sampler = Sampler(model, tokenizer)
    prompt, lines = "The Danube flows through\n", ["Vienna", "Budapest and Belgrade", "Quote: The Danube is a river"]
    scores = sampler.score(prompt, lines)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    for line, (log_probability, count) in zip(lines, scores):
        line_ids = tokenizer(line, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        with torch.no_grad():
            logits = model(torch.tensor([prompt_ids + line_ids])).logits[0].float().log_softmax(-1)
        expected = sum(float(logits[len(prompt_ids) - 1 + i, token]) for i, token in enumerate(line_ids))
        assert count == len(line_ids) and log_probability == pytest.approx(expected, abs=1e-3)
    assert len({round(s, 3) for s, _ in scores}) == len(lines)


def test_a_row_told_where_to_stop_stops_there_and_the_others_decode_on(tiny):
    sampler = Sampler(*tiny)
    prompts = ["The Danube flows through", "Vienna"]
    full = sampler.sample(prompts, max_new_tokens=12, temperature=0)
    first_token = tiny[1](full[0], add_special_tokens=False)["input_ids"][:1]
    start = tiny[1].decode(first_token).strip()
    assert start and len(full[0]) > len(start)  # the tiny model's line runs on past its first token
    decoded = sampler.stats.decode_tokens
    stopped = sampler.sample(prompts, max_new_tokens=12, temperature=0, stop_at=[start, None])
    assert stopped[1] == full[1] and stopped[0].startswith(start) and full[0].startswith(stopped[0])
    assert len(stopped[0]) < len(full[0]) and sampler.stats.decode_tokens - decoded < decoded


def test_seeded_sampling_is_reproducible(tiny):
    model, tokenizer = tiny
    sampler = Sampler(model, tokenizer)
    draw = lambda: sampler.sample(["Vienna"] * 3, 10, 1.0, 0.9, torch.Generator().manual_seed(3))  # noqa: E731
    assert draw() == draw()


def test_a_temperature_per_prompt_keeps_greedy_rows_greedy(tiny):
    sampler = Sampler(*tiny)
    greedy = sampler.sample(["Vienna"], 10, temperature=0)[0]
    draws = [sampler.sample(["Vienna"] * 3, 10, [0.0, 1.5, 1.5], 0.99, torch.Generator().manual_seed(seed))
             for seed in range(6)]
    assert all(lines[0] == greedy for lines in draws)
    assert len({line for lines in draws for line in lines[1:]}) > 1  # the other rows are sampled


def test_best_of_n_keeps_the_greedy_episode_among_the_sampled_ones(tiny, corpus):
    one, three = SamplingConfig.best_of(1), SamplingConfig.best_of(3)
    assert one.temperatures(1) == one.reading_temperatures(1) == [0.0]
    assert three.temperatures(3) == three.reading_temperatures(3) == [0.0, BEST_OF_TEMPERATURE, BEST_OF_TEMPERATURE]
    assert SamplingConfig.best_of(3, temperature=0.9, greedy_first=False).temperatures(2) == [0.9, 0.9]
    reading = SamplingConfig.best_of(3, temperature=0.0, reading_temperature=0.7)  # the reader's choices alone
    assert reading.temperatures(3) == [0.0, 0.0, 0.0] and reading.reading_temperatures(3) == [0.0, 0.7, 0.7]
    sampler = Sampler(*tiny)
    question, settings = "Which river flows through Vienna?", BrowserSettings(window_lines=8, max_actions=4)

    def episodes(n, config):
        browsers = [Browser(corpus, BrowserSettings(**vars(settings))) for _ in range(n)]
        return run_episodes(sampler, browsers, question, config)

    [greedy] = episodes(1, SamplingConfig(temperature=0.0, max_action_tokens=8, constrained=False))
    runs = [episodes(3, SamplingConfig(temperature=1.5, greedy_first=True, max_action_tokens=8, seed=seed,
                                       constrained=False)) for seed in range(3)]
    assert all(run[0].actions == greedy.actions for run in runs)
    assert len({tuple(e.actions) for run in runs for e in run[1:]}) > 1


def test_lockstep_episodes_run_to_the_end_and_never_crash(tiny, corpus):
    model, tokenizer = tiny
    sampler = Sampler(model, tokenizer)
    settings = BrowserSettings(window_lines=8, max_actions=4)
    browsers = [Browser(corpus, BrowserSettings(**vars(settings))) for _ in range(3)]
    episodes = run_episodes(sampler, browsers, "Which river flows through Vienna?",
                            SamplingConfig(temperature=1.0, max_action_tokens=8, seed=0, constrained=False))
    assert len(episodes) == 3
    for episode in episodes:
        assert 1 <= len(episode.steps) <= 4 and episode.end is not None
        assert episode.steps[0].observation.startswith("♦Question\nWhich river flows through Vienna?")
    # A random model writes garbage: the browser must have counted it as invalid actions, not crashed.
    assert any(step.error for episode in episodes for step in episode.steps)
    assert sampler.stats.decode_tokens > 0


def open_danube(corpus) -> Browser:
    browser = Browser(corpus, BrowserSettings(window_lines=12))
    browser.reset("Which river flows through Vienna?")
    assert browser.step("Search Danube").error is None and browser.step("Clicked on link 0").error is None
    return browser


def test_choose_quote_takes_the_likeliest_of_the_written_line_and_the_sentences_in_view(tiny, corpus):
    sampler = Sampler(*tiny)
    browser = open_danube(corpus)
    prompt = action_example(browser.observation(), "")[0]
    written = "Quote: The Danube is a river"
    page_text = " ".join(browser.page.plain_lines)
    sentences = sentences_in_view(browser)
    candidates = [written] + [quote_action(s, page_text) for s in sentences]
    assert len(sentences) >= 3
    means = [total / count for total, count in sampler.score(prompt, candidates)]
    chosen = choose_quote(sampler, browser, prompt, written)
    assert chosen == candidates[means.index(max(means))]
    drawn = {choose_quote(sampler, browser, prompt, written, 1.0, torch.Generator().manual_seed(seed))
             for seed in range(12)}
    assert drawn <= set(candidates) and len(drawn) > 1
    # A sentence quoted already is not offered again.
    first = sentences[0]
    assert browser.step(f"Quote: {first}").error is None
    assert all(choose_quote(sampler, browser, prompt, written, 1.0, torch.Generator().manual_seed(seed))
               != quote_action(first, page_text) for seed in range(12))


def test_episodes_with_sentence_quotes_quote_what_choose_quote_picks(tiny, corpus, monkeypatch):
    sampler = Sampler(*tiny)
    script = iter(["Search Danube", "Clicked on link 0", "Quote: The Danube is a river", "End: Answer"])
    monkeypatch.setattr(sampler, "sample", lambda prompts, *args, **kwargs: [
        "The Danube [1]." if p.rstrip().endswith("♦Answer") else next(script) for p in prompts])
    browser = Browser(corpus, BrowserSettings(window_lines=12))
    episode, = run_episodes(sampler, [browser], "Which river flows through Vienna?",
                            SamplingConfig(temperature=0.0, quotes="likelihood", floor=False))
    reference = open_danube(corpus)
    expected = choose_quote(sampler, reference, action_example(reference.observation(), "")[0],
                            "Quote: The Danube is a river")
    assert episode.steps[2].action == expected and episode.steps[2].error is None
    assert len(episode.quotes) == 1 and episode.answer == "The Danube [1]."


def test_specific_find_steps_through_the_rarest_question_words_on_the_page(corpus):
    from webqa.env.browser import matching_lines
    from webqa.text import find_needles
    from webqa.policy.rules import specific_find

    browser = Browser(corpus, BrowserSettings(window_lines=12))
    question = "What ended the need for ABC to maintain interests in other countries?"
    browser.reset(question)
    assert specific_find(browser) is None  # no page yet
    assert browser.step("Search American Broadcasting Company").error is None
    assert specific_find(browser) is None  # search results hold no text to look through
    assert browser.step("Clicked on link 0").error is None
    lines = browser.page.plain_lines
    counts = {n: len(matching_lines(lines, n)) for n in find_needles(question) if matching_lines(lines, n)}
    rarest = min(counts.values())
    first = specific_find(browser)
    assert first is not None and counts[first.removeprefix("Find in page: ")] == rarest
    # It is looked for as often as it occurs, then the next rarest comes.
    for _ in range(rarest):
        assert specific_find(browser) == first and browser.step(first).error is None
    after = specific_find(browser)
    assert after != first and counts[after.removeprefix("Find in page: ")] >= rarest


def test_episodes_with_specific_finds_look_for_what_specific_find_picks(tiny, corpus, monkeypatch):
    from webqa.policy.rules import specific_find

    sampler = Sampler(*tiny)
    question = "What ended the need for ABC to maintain interests in other countries?"
    script = iter(["Search American Broadcasting Company", "Clicked on link 0", "Find in page: the", "End: Nonsense"])
    monkeypatch.setattr(sampler, "sample", lambda prompts, *args, **kwargs: [next(script) for _ in prompts])
    episode, = run_episodes(sampler, [Browser(corpus, BrowserSettings(window_lines=12))], question,
                            SamplingConfig(temperature=0.0, specific_finds=True, floor=False))
    reference = Browser(corpus, BrowserSettings(window_lines=12))
    reference.reset(question)
    for action in ("Search American Broadcasting Company", "Clicked on link 0"):
        reference.step(action)
    assert episode.steps[2].action == specific_find(reference) != "Find in page: the"
    assert episode.steps[2].error is None
    # Provenance: the rule's find is marked as the rule's, with the model's own proposal beside it.
    assert [step.by for step in episode.steps] == ["model", "model", "rule:specific-find", "model"]
    assert episode.steps[2].proposed == "Find in page: the"
    assert [step.proposed for step in episode.steps[:2]] == [None, None]


def test_searches_the_backend_answers_alike_are_worded_alike(corpus):
    browsers = [Browser(corpus) for _ in range(4)]
    actions = ["Search Who wrote the novel Lolita", "Search who wrote the novel Lolita?", "Search Lolita author",
               "Find in page: Lolita"]
    assert shared_searches(browsers, actions) == ["Search Who wrote the novel Lolita"] * 2 + actions[2:]

    class KeylessBackend:  # a backend that says nothing about which queries it answers alike
        name = "keyless"

        def search(self, query, k=10):
            return corpus.search(query, k)

        def fetch(self, url):
            return corpus.fetch(url)

    keyless = [Browser(KeylessBackend()) for _ in range(2)]
    assert shared_searches(keyless, actions[:2]) == actions[:2]


def test_a_line_ends_at_a_chat_turn_marker_as_at_end_of_sequence(tiny):
    """A model that starts a new chat turn (here `<|im_start|>`, not eos) has ended its line."""
    model, tokenizer = tiny
    marker = next(i for i in tokenizer.all_special_ids if i != tokenizer.eos_token_id)
    sampler = Sampler(model, tokenizer)
    free = sampler.sample(["Vienna"], 10, temperature=0)[0]
    hook = model.lm_head.register_forward_hook(lambda module, args, out: out.index_add(
        -1, torch.tensor([marker]), torch.full((*out.shape[:-1], 1), 1e4)))
    try:
        before = sampler.stats.decode_tokens
        line = sampler.sample(["Vienna"], 10, temperature=0)[0]
        decoded = sampler.stats.decode_tokens - before
    finally:
        hook.remove()
    assert free and line == "" and decoded == 1  # the marker is drawn first, ends the line and is not text
