"""studio.yamlio reads YAML through libyaml's C parser with exactly the safe loader's results."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from studio import yamlio
from studio.errors import PresetError
from studio.models.catalog import CATALOG_PATH
from studio.platforms import EXPORTS_FILE
from studio.presets import parse_text

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
STUDIO_FILES = sorted({*PRESETS_DIR.glob("*.yaml"), EXPORTS_FILE, CATALOG_PATH})

DOCUMENTS = {
    "scalars": "a: 1\nb: 2.5\nc: true\nd: null\ne: ~\nf: yes\ng: 1_000\nh: 0x1F\ni: .inf\n",
    "strings": "plain: hello world\nquoted: 'it''s'\ndouble: \"tab\\there\"\nunicode: café ☕\n",
    "dates": "day: 2024-05-01\nwhen: 2024-05-01T12:30:00Z\n",
    "nesting": "presets:\n  - id: a\n    camera: {move: pan, strength: 0.4}\n  - [1, [2, 3]]\n",
    "anchors": "base: &b {fps: 12, aspect: '1:1'}\nuse: *b\nmerged:\n  <<: *b\n  fps: 24\n",
    "block text": "note: |\n  line one\n  line two\nfolded: >\n  one\n  two\n",
    "empty": "",
    "comment only": "# nothing here\n",
}

PYTHON_TAGS = [
    '!!python/object/apply:os.system ["echo hi"]',
    "run: !!python/object/apply:os.system [echo hi]",
    "name: !!python/name:os.system",
    "obj: !!python/object/new:subprocess.Popen [[echo, hi]]",
]

BROKEN = [
    "presets:\n  - id: x\n    title: [Drift\n",
    "a: b: c\n",
    'key: "unterminated\n',
    "\tkey: 1\n",
    "- a\nb: 1\n",
]


def python_error(text: str) -> yaml.YAMLError:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load(text)
    return caught.value


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
def test_safe_load_parses_with_libyamls_c_safe_loader(monkeypatch):
    used = []
    real_load = yaml.load

    def spy(stream, Loader):  # noqa: N803 (PyYAML's own keyword)
        used.append(Loader)
        return real_load(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load", spy)
    assert yamlio.safe_load("a: 1") == {"a": 1}
    assert used == [yaml.CSafeLoader]


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_documents_load_exactly_as_yaml_safe_load_reads_them(name):
    text = DOCUMENTS[name]
    assert yamlio.safe_load(text) == yaml.safe_load(text)


def test_the_studios_own_files_are_all_compared():
    names = {p.name for p in STUDIO_FILES}
    assert {"exports.yaml", "models.yaml", "portrait.yaml", "product.yaml"} <= names


@pytest.mark.parametrize("path", STUDIO_FILES, ids=lambda p: p.name)
def test_the_studios_yaml_files_load_exactly_as_yaml_safe_load_reads_them(path):
    text = path.read_text(encoding="utf-8")
    loaded = yamlio.safe_load(text)
    assert loaded and loaded == yaml.safe_load(text)


@pytest.mark.parametrize("text", PYTHON_TAGS)
def test_python_object_tags_are_refused_as_the_safe_loader_refuses_them(monkeypatch, text):
    ran = []
    monkeypatch.setattr(os, "system", lambda *a: ran.append(a) or 0)
    expected = python_error(text)
    with pytest.raises(yaml.constructor.ConstructorError) as caught:
        yamlio.safe_load(text)
    assert isinstance(expected, yaml.constructor.ConstructorError)
    assert caught.value.problem == expected.problem
    assert "could not determine a constructor" in caught.value.problem
    assert not ran


@pytest.mark.parametrize("text", BROKEN)
def test_invalid_yaml_raises_a_yaml_error_at_the_same_place(text):
    expected = python_error(text)
    with pytest.raises(yaml.YAMLError) as caught:
        yamlio.safe_load(text)
    assert type(caught.value) is type(expected)
    got, want = caught.value.problem_mark, expected.problem_mark
    assert (got.line, got.column) == (want.line, want.column)


def test_a_preset_files_syntax_error_still_names_its_line():
    text = "presets:\n  - id: drift\n    title: [Drift\n    camera: {move: pan}\n"
    mark = python_error(text).problem_mark
    with pytest.raises(PresetError) as caught:
        parse_text(text, "broken.yaml")
    message = str(caught.value)
    assert (mark.line + 1, mark.column + 1) == (4, 11)  # where the flow sequence breaks
    assert message.startswith("broken.yaml: is not valid YAML at line 4, column 11")
    assert message.endswith(".")
