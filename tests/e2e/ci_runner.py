"""Run the shell steps of our CI templates the way GitHub Actions and GitLab CI run them.

GitHub: a composite action's `run` steps go through `bash --noprofile --norc -eo pipefail`, with
their `env:` expressions resolved and GITHUB_OUTPUT collected between steps; `uses` steps are
recorded with their resolved inputs (they call other actions, which are not ours to run).
GitLab: a job's `script` lines run as one bash script with errexit and pipefail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
_EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


@dataclass
class ActionRun:
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # step id -> outputs
    uses: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # action, resolved `with`
    log: str = ""
    failed_step: str | None = None


class ActionEmulator:
    def __init__(self, action_file: Path, inputs: dict[str, str], workdir: Path, runner_temp: Path) -> None:
        self.spec = yaml.safe_load(action_file.read_text())
        self.action_path = action_file.parent
        defaults = {k: str(v.get("default", "")) for k, v in self.spec["inputs"].items()}
        unknown = set(inputs) - set(defaults)
        assert not unknown, f"inputs the action does not declare: {unknown}"
        self.inputs = {**defaults, **inputs}
        self.workdir, self.runner_temp = workdir, runner_temp

    def value(self, expr: str, run: ActionRun) -> str:
        parts = expr.split(".")
        if parts[0] == "inputs":
            return self.inputs[".".join(parts[1:])]
        if expr == "github.action_path":
            return str(self.action_path)
        if expr == "runner.temp":
            return str(self.runner_temp)
        if parts[0] == "steps" and parts[2] == "outputs":
            return run.outputs.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"expression the emulator does not know: {expr}")

    def resolve(self, text: str, run: ActionRun) -> str:
        return _EXPR.sub(lambda m: self.value(m.group(1), run), str(text))

    def condition(self, cond: str, run: ActionRun, failed: bool) -> bool:
        """`always()`, `success()` and `a == 'b'` / `a != 'b'` joined by &&: what our action uses."""
        ok = True
        for term in (t.strip() for t in cond.split("&&")):
            if term in ("always()", "success()"):
                ok = ok and (term == "always()" or not failed)
                continue
            m = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", term)
            assert m, f"condition the emulator does not know: {term}"
            equal = self.value(m.group(1), run) == m.group(3)
            ok = ok and (equal if m.group(2) == "==" else not equal)
        return ok if "always()" in cond else ok and not failed

    def run(self, env: dict[str, str], skip: tuple[str, ...] = (), fake_outputs: dict | None = None) -> ActionRun:
        run = ActionRun(outputs=dict(fake_outputs or {}))
        failed = False
        for index, step in enumerate(self.spec["runs"]["steps"]):
            step_id = step.get("id", f"step{index}")
            if not self.condition(step.get("if", "success()"), run, failed):
                continue
            if "uses" in step:
                run.uses.append((step["uses"], {k: self.resolve(v, run) for k, v in step.get("with", {}).items()}))
                if step["uses"].startswith("actions/setup-python@"):  # puts `python` first on PATH
                    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
                continue
            if step_id in skip:
                continue
            code = self._shell(step, step_id, run, env)
            if code != 0:
                failed, run.failed_step = True, run.failed_step or step_id
        return run

    def _shell(self, step: dict, step_id: str, run: ActionRun, env: dict[str, str]) -> int:
        assert step.get("shell") == "bash" and "${{" not in step["run"], "run scripts take inputs through env"
        output = self.runner_temp / f"output-{step_id}"
        output.write_text("")
        step_env = {**os.environ, **env, "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(self.runner_temp),
                    "GITHUB_STEP_SUMMARY": str(self.runner_temp / "summary.md"),
                    "GITHUB_ACTION_PATH": str(self.action_path)}
        step_env.update({k: self.resolve(v, run) for k, v in step.get("env", {}).items()})
        proc = subprocess.run([*BASH, "-c", step["run"]], cwd=self.workdir, env=step_env, capture_output=True,
                              text=True, timeout=600, stdin=subprocess.DEVNULL)
        run.log += f"--- {step_id} (exit {proc.returncode})\n{proc.stdout}{proc.stderr}"
        run.outputs[step_id] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return proc.returncode


def gitlab_job(template: Path, job: str) -> tuple[dict[str, str], dict]:
    spec = yaml.safe_load(template.read_text())
    variables = {k: str(v) for k, v in spec.get("variables", {}).items()}
    variables.update({k: str(v) for k, v in spec[job].get("variables", {}).items()})
    return variables, spec[job]


def run_gitlab_script(lines: list[str], variables: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **variables}
    return subprocess.run([*BASH, "-c", "\n".join(lines)], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
