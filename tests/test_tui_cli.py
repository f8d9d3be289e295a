"""`webqa tui`, `webqa record` and `webqa compare`: the options reach the app; bad input is one line."""

import pytest

from webqa import cli
from webqa.tui import WebQAApp


@pytest.fixture
def started(monkeypatch):
    """The apps the command line would have run, without taking over the terminal."""
    apps = []
    monkeypatch.setattr(WebQAApp, "run", lambda self: apps.append(self))
    return apps


def test_tui_defaults_to_ask_with_backend_and_n(started):
    assert cli.main(["tui", "--web", "--n", "3", "--policy", "runs/p"]) == 0
    (app,) = started
    assert (app.options.mode, app.options.backend, app.options.n, app.options.policy) == ("ask", "web", 3, "runs/p")


def test_record_and_tui_record_open_the_recorder(started, tmp_path, corpus):
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "Which river flows through Vienna?"}\n')
    assert cli.main(["record", "--demos", str(tmp_path / "d.jsonl"), "--questions", str(questions),
                     "--recorder", "ann"]) == 0
    assert cli.main(["tui", "--record", "--demos", str(tmp_path / "d.jsonl")]) == 0
    first, second = started
    assert first.options.mode == second.options.mode == "record"
    assert first.recorder.next_question() == {"question": "Which river flows through Vienna?"}
    assert first.recorder.recorder == "ann" and first.recorder.demos == tmp_path / "d.jsonl"


def test_compare_needs_a_readable_pairs_file(started, tmp_path, capsys):
    assert cli.main(["compare"]) == 1
    assert "compare needs a pairs file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert cli.main(["tui", "--compare", "--pairs", str(tmp_path / "bad.json")]) == 1
    assert "not JSON" in capsys.readouterr().err
    assert started == []
