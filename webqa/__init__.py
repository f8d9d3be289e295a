"""webqa: a browser-assisted question-answering agent in the spirit of WebGPT."""

__version__ = "0.1.0"
