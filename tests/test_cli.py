"""The `webqa` command line on the embedded encyclopedia."""

import json
import subprocess
import sys

from webqa.cli import main


def test_search_prints_ranked_results(corpus, capsys):
    assert main(["search", "Which river flows through Vienna?"]) == 0
    out = capsys.readouterr().out
    assert " 0. " in out and "Danube (en.wikipedia.org)" in out
    assert "https://en.wikipedia.org/wiki/Danube" in out


def test_search_json(corpus, capsys):
    assert main(["search", "--json", "-k", "3", "Vienna"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3 and results[0]["title"] == "Vienna"
    assert set(results[0]) == {"title", "url", "snippet", "passage"}


def test_open_prints_the_rendered_page_with_numbered_links(corpus, capsys):
    assert main(["open", "https://en.wikipedia.org/wiki/Vienna", "--lines", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Vienna\nhttps://en.wikipedia.org/wiki/Vienna\n")
    assert "【0†" in out and "\nLinks:\n" in out and "    0  https://" in out


def test_open_by_title(corpus, capsys):
    assert main(["open", "danube"]) == 0
    assert capsys.readouterr().out.startswith("Danube\n")


def test_errors_are_one_line_without_traceback(corpus, tmp_path):
    process = subprocess.run([sys.executable, "-m", "webqa.cli", "open", "No Such Page At All 123"],
                             capture_output=True, text=True)
    assert process.returncode == 1
    assert process.stderr.strip().splitlines() == [
        "webqa: 'No Such Page At All 123' is not in the offline encyclopedia; search for it instead"]
    assert "Traceback" not in process.stderr


def test_browse_reads_commands_and_saves_the_episode(corpus, tmp_path, monkeypatch, capsys):
    commands = iter(["Search Vienna", "Clicked on link 0", "Quote: Vienna", "End: Answer"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(commands))
    out_file = tmp_path / "episodes.jsonl"
    assert main(["browse", "Where is Vienna?", "--save", str(out_file)]) == 0
    episode = json.loads(out_file.read_text())
    assert episode["question"] == "Where is Vienna?"
    assert [s["action"] for s in episode["steps"]] == ["Search Vienna", "Clicked on link 0", "Quote: Vienna",
                                                       "End: Answer"]
    assert episode["end"] == "Answer" and episode["quotes"][0]["text"] == "Vienna"


def test_ask_shows_each_step_on_stderr_as_it_happens_unless_quiet(corpus, capsys, monkeypatch):
    import webqa.agent
    from tests.test_tui_ask import ScriptedSampler
    from tests.tui_helpers import ACTIONS, ANSWER, QUESTION

    import webqa.policy.reading

    monkeypatch.setattr(webqa.policy.reading, "load_answerer", lambda path=None: None)  # the extractor answers
    monkeypatch.setattr(webqa.agent, "load_sampler", lambda policy=None: ScriptedSampler(ACTIONS))
    assert main(["ask", "--n", "1", QUESTION]) == 0
    captured = capsys.readouterr()
    floor, *steps = captured.err.strip().splitlines()
    assert floor.split()[:3] == ["1", "[rule:floor]", "Search"] and QUESTION in floor  # the question as asked
    assert len(steps) == len(ACTIONS)
    assert [line.split(None, 2)[2].startswith(action) for line, action in zip(steps, ACTIONS)] == [True] * len(ACTIONS)
    assert [line.split()[1] for line in steps] == ["[model]"] * len(ACTIONS)  # who chose it: the model wrote each
    assert steps[0].split()[0] == "2" and "(" in steps[-1]  # numbered; the page's title once on a page
    assert "[" in captured.out.splitlines()[0] and "Danube" in captured.out
    monkeypatch.setattr(webqa.agent, "load_sampler", lambda policy=None: ScriptedSampler(ACTIONS))
    assert main(["ask", "--n", "1", "--quiet", QUESTION]) == 0
    assert capsys.readouterr().err == ""
