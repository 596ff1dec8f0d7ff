"""Finding and reading a study file, bounded: a built-in name or a path, at most
:data:`MAX_FILE_BYTES`, UTF-8, YAML with a safe loader that also refuses anchors and aliases.
Every problem is one :class:`StudyError` naming the file. Checking what was read against the
schema is :mod:`orchestrator.study_file.schema`.

Example:
    >>> raw, label, text = read_study_file("ablation_dims")
    >>> raw["name"], label
    ('ablation_dims', 'studies/ablation_dims.yaml')
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STUDIES_DIR = PROJECT_ROOT / "studies"
MAX_FILE_BYTES = 256 * 1024  # the largest built-in study is a few kB
MAX_DEPTH = 32  # nested mappings and lists; the deepest built-in study nests 5


class StudyError(ValueError):
    """A study file that cannot run; the message names the file and the field."""


def find_study_file(name_or_path: str | Path) -> Path:
    """A path as given, else ``studies/NAME.yaml`` (in the working directory, then the project)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise StudyError(f"{p}: no such study file")
        return p
    for d in (Path.cwd() / "studies", STUDIES_DIR):
        if (d / f"{p.name}.yaml").is_file():
            return d / f"{p.name}.yaml"
    raise StudyError(f"no study named {str(name_or_path)!r}; built-in studies: {list_studies()}")


def list_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases (``*name``): a study file has no use for them, and
    nested aliases expand a small file into gigabytes (a "billion laughs"). It also refuses a key
    given twice in one mapping (YAML would keep the last silently) and nesting deeper than
    :data:`MAX_DEPTH` (10,000 ``[`` would exhaust Python's recursion)."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"found the alias *{event.anchor}; a study file may not use "
                                                          "anchors and aliases (write the value out)", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                              self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: {...}`: merged, not a key
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, label: str) -> Any:
    """Parse a study file's text (safe: plain data only, no aliases); raises :class:`StudyError`."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        raise StudyError(f"{label}: not valid YAML: {_one_line(e)}") from None


def _one_line(error: yaml.YAMLError) -> str:
    """``line 3, column 1: the key 'a' is given twice``: PyYAML's message without its excerpt."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(error).split())
    context = getattr(error, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " + (f"{context}: " if context else "") + problem


def read_text(path: Path, label: str) -> str:
    """A study file's text: at most :data:`MAX_FILE_BYTES`, UTF-8; raises :class:`StudyError`."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise StudyError(f"{label}: cannot read it ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise StudyError(f"{label}: larger than {MAX_FILE_BYTES // 1024} KiB; a study file is a few kB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise StudyError(f"{label}: line {line}: not UTF-8 text (byte {data[e.start]:#x} at offset {e.start})") from None


def read_study_file(name_or_path: str | Path) -> tuple[Any, str, str]:
    """``(the parsed YAML, the file's label for errors, its text)``; raises :class:`StudyError`."""
    path = find_study_file(name_or_path)
    label = _label(path)
    text = read_text(path, label)
    return load_yaml(text, label), label, text


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
