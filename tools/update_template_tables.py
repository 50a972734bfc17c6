"""Regenerate the variable tables in templates/README.md from the workflow definitions.

    python tools/update_template_tables.py           # rewrite the tables between the markers
    python tools/update_template_tables.py --check   # exit 1 if the README is out of date (CI)

Each workflow's tables sit between two markers, and are exactly what
``dealerdocs fields WORKFLOW --format md`` prints for the project's own config.toml::

    <!-- dealerdocs fields quote --format md：由 tools/update_template_tables.py 生成，请勿手改 -->
    …
    <!-- /dealerdocs fields quote -->

Everything outside the markers is written by hand. tests/test_variables.py checks that the
committed README equals what this script would write.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "templates" / "README.md"
BEGIN = "<!-- dealerdocs fields {key} --format md：由 tools/update_template_tables.py 生成，请勿手改 -->"
END = "<!-- /dealerdocs fields {key} -->"
_BLOCK = re.compile(r"(?ms)^<!-- dealerdocs fields (\w+) --format md：[^\n]*-->\n(.*?)^<!-- /dealerdocs fields \1 -->$")


def generated(config_path: Path = ROOT / "config.toml") -> dict[str, str]:
    """Workflow key → its tables, as ``dealerdocs fields KEY --format md`` prints them."""
    sys.path.insert(0, str(ROOT))
    from engine import load_config
    from engine import variables
    from engine.workflow import load_workflows

    config = load_config(config_path)
    workflows = load_workflows(config)
    return {key: variables.markdown(wf, workflows,
                                    variables.template_names(wf, config.template_layers.find))
            for key, wf in workflows.items()}


def blocks(text: str) -> dict[str, str]:
    """Workflow key → the text between its markers in ``text`` (without the final newline)."""
    return {m.group(1): m.group(2).removesuffix("\n") for m in _BLOCK.finditer(text)}


def updated(text: str, tables: dict[str, str]) -> str:
    """``text`` with every marked block replaced by its workflow's tables; a workflow without
    markers, or markers of an unknown workflow, is an error (the README must cover them all)."""
    found = blocks(text)
    if set(found) != set(tables):
        missing, unknown = sorted(set(tables) - set(found)), sorted(set(found) - set(tables))
        raise SystemExit(f"{README.name}: markers missing for {missing or '—'}, "
                         f"for unknown workflows {unknown or '—'}")
    return _BLOCK.sub(lambda m: f"{BEGIN.format(key=m.group(1))}\n{tables[m.group(1)]}\n"
                                f"{END.format(key=m.group(1))}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when the README differs from the definitions")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = updated(text, generated())
    if args.check:
        if new != text:
            print(f"{args.readme} is out of date: run python tools/update_template_tables.py",
                  file=sys.stderr)
            return 1
        print(f"{args.readme} matches the workflow definitions")
        return 0
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"updated {args.readme}")
    else:
        print(f"{args.readme} already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
