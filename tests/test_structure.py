"""The package's shape: no import circles, and inference never imports the gold-steered expert.

Imports are read from the source with `ast`, function-local ones included (a circle hidden inside a
function is still a circle).
"""

import ast
from pathlib import Path

import webqa

PACKAGE = Path(webqa.__file__).parent
EXPERT = {"webqa.policy.expert", "webqa.policy.expert_moves", "webqa.policy.expert_text"}
# What answering a question runs: none of it may import the expert, which knows the gold answer.
INFERENCE = {"webqa.agent", "webqa.loading", "webqa.text", "webqa.types", "webqa.scoring",
             "webqa.policy.rollout", "webqa.policy.reader", "webqa.policy.extractor", "webqa.policy.script",
             "webqa.policy.reading", "webqa.policy.sampler", "webqa.policy.model", "webqa.policy.prompts",
             "webqa.policy.constraints", "webqa.policy.prefix_cache", "webqa.reward.model"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(top_level_only: bool = False) -> dict[str, set[str]]:
    """Each webqa module -> the webqa modules it imports (`from a import b` counts a.b when that is a module)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        nodes = tree.body if top_level_only else ast.walk(tree)
        targets = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    assert "webqa.policy.model" in graph["webqa.policy.reading"]  # imported inside load_answerer
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_inference_never_imports_the_expert():
    graph = import_graph()
    missing = INFERENCE - set(graph)
    assert not missing, f"listed inference modules that do not exist: {missing}"
    offenders = {name: sorted(graph[name] & EXPERT) for name in INFERENCE if graph[name] & EXPERT}
    assert offenders == {}


def test_loading_the_agent_loads_no_expert_module():
    """What `import webqa.agent` pulls in at module level, transitively, holds no expert module."""
    graph = import_graph(top_level_only=True)
    seen, todo = set(), ["webqa.agent"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    assert seen & EXPERT == set()
