"""The terminal UI (`webqa tui`): ask the agent, record demonstrations, compare answers.

    from webqa.tui import TuiOptions, WebQAApp
    WebQAApp(TuiOptions(mode="record", demos="demos.jsonl")).run()

This package uses the browser, the policy and the types; nothing outside it imports it.
"""

from webqa.tui.app import TuiOptions, WebQAApp

__all__ = ["TuiOptions", "WebQAApp"]
