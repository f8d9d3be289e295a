"""webqa: a browser-assisted question-answering agent in the spirit of WebGPT."""

__version__ = "0.1.0"


def answer(question, **options):
    """Answer a question by browsing; see `webqa.agent.answer`."""
    from webqa.agent import answer as _answer

    return _answer(question, **options)
