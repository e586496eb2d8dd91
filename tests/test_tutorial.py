"""docs/writing-plugins.md, followed literally: every file it shows is written into an empty folder and every
``$`` command is run, in order, in one shell; each command must succeed and print the lines the tutorial
shows under it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
MARK = "@@sport-tutorial-command"


def steps(markdown: str) -> list[tuple[str, str, list[str]]]:
    """The tutorial as ("file", path, [content]) and ("command", text, [expected output lines]), in order."""
    out: list[tuple[str, str, list[str]]] = []
    for lang, body in FENCE.findall(markdown):
        lines = body.splitlines()
        if lang == "console":
            for line in lines:
                if line.startswith("$ "):
                    out.append(("command", line[2:], []))
                elif line.strip():
                    out[-1][2].append(line.strip())
        elif lines and (named := re.match(r"#\s*(\S+\.(?:py|toml))$", lines[0])):
            out.append(("file", named.group(1), [body]))
    return out


def script(plan: list[tuple[str, str, list[str]]]) -> str:
    """One bash script doing every step (files as here-documents), with a marker before each command."""
    parts = ["set -euo pipefail"]
    for i, (kind, what, content) in enumerate(plan):
        if kind == "file":
            heredoc = f"cat > '{what}' <<'SPORT_TUTORIAL_EOF'\n{content[0]}SPORT_TUTORIAL_EOF"
            parts.append(f"mkdir -p \"$(dirname '{what}')\"\n{heredoc}")
        else:
            parts.append(f"echo '{MARK} {i}'\n{what}")
    return "\n".join(parts) + "\n"


def test_the_tutorial_runs_as_written(tmp_path):
    plan = steps(TUTORIAL.read_text(encoding="utf-8"))
    files = [what for kind, what, _ in plan if kind == "file"]
    commands = [what for kind, what, _ in plan if kind == "command"]
    assert {"pyproject.toml", "recipe.toml", "src/sport_hoeffding/plugin.py", "tests/test_plugin.py"} <= set(files)
    assert any(c.startswith("sport run") for c in commands) and any(c.startswith("sport verify") for c in commands)

    folder = tmp_path / "empty"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPORT_") and k != "PYTHONPATH"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", SPORT_NO_PROGRESS="1")
    done = subprocess.run(
        ["bash", "-c", script(plan)], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    outputs = dict.fromkeys(range(len(plan)), "")
    current = None
    for line in (done.stdout + "\n").splitlines():
        if line.startswith(MARK):
            current = int(line.split()[-1])
        elif current is not None:
            outputs[current] += line + "\n"
    assert done.returncode == 0, (  # the last command started is the one that failed
        f"command {plan[current][1]!r} failed ({done.returncode}):\n{outputs[current]}\n{done.stderr[-3000:]}"
    )
    for i, (kind, what, expected) in enumerate(plan):
        if kind == "command":
            for line in expected:
                if "…" not in line:
                    assert line in outputs[i] + done.stderr, f"{what!r} did not print {line!r}:\n{outputs[i]}"
    assert (folder / "src" / "sport_hoeffding" / "certifier.py").is_file()
    assert len(list(folder.glob("runs/tutorial-*/certify/certificate.json"))) == 1


@pytest.mark.parametrize("path", ["docs/plugin-api.md", "docs/writing-plugins.md"])
def test_the_plugin_docs_name_only_modules_and_functions_that_exist(path):
    """Every ``sport_core.x.y`` the docs cite can be imported (a renamed function breaks the docs' test)."""
    import importlib

    text = (Path(__file__).resolve().parents[1] / path).read_text(encoding="utf-8")
    for dotted in sorted(set(re.findall(r"\bsport_core(?:\.\w+)+", text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for name in parts[cut:]:
                assert hasattr(obj, name), f"{path} cites {dotted}, but {'.'.join(parts[:cut])} has no {name}"
                obj = getattr(obj, name)
            break
        else:
            raise AssertionError(f"{path} cites {dotted}, which does not import")
