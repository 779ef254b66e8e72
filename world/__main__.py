"""python -m world: write the simulated world's datasets into a run directory.

    python -m world --out runs/cpu                 # the cpu preset's sizes
    python -m world --out runs/tiny --preset tiny  # the tests' sizes
    python -m world --help                         # every field of world.Config
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re

from .datasets import PRESETS, Config, write_datasets


def _field_help() -> dict[str, str]:
    """--help text from the comment beside each Config field."""
    src = inspect.getsource(Config)
    return dict(re.findall(r"^\s+(\w+): [^=]+=.*?#\s*(.+)$", src, re.M))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m world",
                                description="Write the simulated world's datasets.")
    p.add_argument("--out", help="run directory (default runs/<preset>)")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    helps = _field_help()
    for f in dataclasses.fields(Config):
        h = f"{helps.get(f.name, '')} (cpu preset: {f.default})".replace("%", "%%")  # argparse
        p.add_argument(f"--{f.name}", type=type(f.default), help=h)
    args = p.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
                 if getattr(args, f.name) is not None}
    cfg = dataclasses.replace(PRESETS[args.preset], **overrides)
    summary = write_datasets(cfg, args.out or f"runs/{args.preset}")
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    try:
        main()
    except OSError as e:  # an unwritable directory, a full disk: one line, no traceback
        raise SystemExit(f"error: {e}") from None
    except KeyboardInterrupt:
        raise SystemExit("\ninterrupted; run the same command again to write the datasets") \
            from None
