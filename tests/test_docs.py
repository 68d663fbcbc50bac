"""README.md and docs/: every relative link resolves (file and #anchor), every `kws` command the
README shows is a real subcommand with real options (checked with the real parser, never run), and
every subcommand's --help names a docs page that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from kws.cli import DOCS_PAGES, build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").rglob("*.md"))
README_MAX_BYTES = 12 * 1024      # issue #20: a README a new user reads in five minutes

FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.S | re.M)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The text links are read from: no fenced code, no inline code, no HTML comments."""
    text = FENCE.sub("", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"(`+)[^`].*?\1", "", text, flags=re.S)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", FENCE.sub("", text), flags=re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)          # a link: its text
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):       # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            problems.append(f"{target}: no such file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_link_checker_sees_broken_links(tmp_path):
    """The checker itself: a missing file, a missing anchor and a good link, in prose and in a table."""
    (tmp_path / "other.md").write_text("# Other page\n\n## Some `code` here (x)\n")
    page = tmp_path / "page.md"
    page.write_text("# Title\n[ok](other.md#some-code-here-x) [bad](missing.md) ![img](nope.png)\n"
                    "| a | [anchor](other.md#nothing) |\n[self](#title) [url](https://example.org/x)\n"
                    "```\n[in code](not-checked.md)\n```\n<!-- [comment](not-checked.md) -->\n")
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert {p.split(":")[0] for p in problems} == {"missing.md", "nope.png", "other.md#nothing"}


# ------------------------------------------------------------------------- README commands
def readme_commands(section: str | None = None) -> list[list[str]]:
    """Every `kws ...` command in the README's sh code blocks (of one `## section` if given)."""
    text = README.read_text(encoding="utf-8")
    if section is not None:
        match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        assert match, f"README has no '## {section}' section"
        text = match.group(1)
    commands = []
    for block in re.findall(r"^```(?:sh|bash)\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            command: list[str] = []
            for word in words + ["&&"]:
                if word in ("&&", "||", "|", ";"):
                    if command and command[0] == "kws":
                        commands.append(command[1:])
                    command = []
                else:
                    command.append(word)
    return commands


def unknown_parts(parser, args: list[str]) -> list[str]:
    """What in `kws ARGS` the parser does not know: the subcommand (and sub-subcommand) chain, then
    every --option of the parser that handles it."""
    words = list(args)
    while words and not words[0].startswith("-"):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            break
        name = words.pop(0)
        if name not in subs[0].choices:
            return [f"subcommand {name!r}"]
        parser = subs[0].choices[name]
    known = {s for a in parser._actions for s in a.option_strings}
    return [f"option {w.split('=')[0]!r} of `{parser.prog}`" for w in words
            if w.startswith("--") and w.split("=")[0] not in known]


def test_quick_start_commands_are_real():
    commands = readme_commands("Quick start")
    assert {c[0] for c in commands} >= {"listen", "devices"}, commands
    assert ["listen", "--file", "examples/audio/keywords.flac"] in commands


@pytest.mark.parametrize("args", readme_commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_parses(args):
    parser = build_parser()
    assert unknown_parts(parser, args) == []
    parsed = parser.parse_args(args)        # argument values, types and required options; nothing runs
    assert callable(parsed.func)


def test_command_checker_sees_unknown_names():
    parser = build_parser()
    assert unknown_parts(parser, ["listen", "--file", "a.wav", "--width", "0.5"]) == []
    assert unknown_parts(parser, ["data", "synth", "--out", "d", "--words", "x"]) == []
    assert unknown_parts(parser, ["listne"]) == ["subcommand 'listne'"]
    assert unknown_parts(parser, ["listen", "--no-such-flag"]) == ["option '--no-such-flag' of `kws listen`"]
    assert unknown_parts(parser, ["data", "synth", "--jobs=2", "--bogus=1"]) == ["option '--bogus' of `kws data synth`"]


def test_the_two_first_commands_stay():
    text = README.read_text(encoding="utf-8")
    assert "bash scripts/setup.sh && kws listen --file examples/audio/keywords.flac" in text
    assert "bash scripts/test.sh" in text
    assert (ROOT / "examples/audio/keywords.flac").is_file()


def test_readme_is_short():
    assert README.stat().st_size <= README_MAX_BYTES


# ------------------------------------------------------------------------- --help names a docs page
def all_parsers(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, child in action.choices.items():
                yield prefix + (name,), child
                yield from all_parsers(child, prefix + (name,))


def test_every_subcommand_help_names_an_existing_docs_page():
    parser = build_parser()
    found = list(all_parsers(parser))
    assert {p[0] for p, _ in found} >= {"listen", "devices", "data", "train", "eval", "export", "bench"}
    for path, sub in found:
        page = DOCS_PAGES.get(path[0])
        assert page, f"kws {' '.join(path)}: no docs page in kws.cli.DOCS_PAGES"
        assert (ROOT / "docs" / page).is_file(), f"kws {' '.join(path)}: docs/{page} does not exist"
        assert f"docs/{page}" in sub.format_help(), f"kws {' '.join(path)} --help does not name docs/{page}"
        assert f"docs/{page}" in parser.format_help()
