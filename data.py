"""data.py: the data formats every stage reads and writes, and converters for public data.

The paper's datasets (section 3.2) are prompts with demonstrations (SFT), prompts with K = 4..9
ranked outputs (the reward model) and bare prompts (PPO). Here each is a JSONL file, one JSON
object per line, that a user can write by hand or convert from a public dataset:

    sft.jsonl            {"prompt": str, "response": str, "category": str}
    comparisons.jsonl    {"prompt": str, "responses": [str, ...], "ranking": [int, ...],
                          "category": str}   K = 4..9 responses (2 also loads: chosen/rejected),
                                             ranking = response indices, best first
    prompts.jsonl, eval_prompts.jsonl, rm_prompts.jsonl    {"prompt": str, "category": str}

A malformed line is a DataError that names its file, line and field; nothing is skipped.
Every prompt is shown to a model in one plain-text template (`format_prompt`), so that GPT-2's
tokenizer needs no new tokens; the response and then the end-of-text token follow it.

This file knows nothing of the simulated world (the `world` package, which writes these
files for the default run): data you bring never loads the simulation.

    python data.py --convert alpaca alpaca_data.json runs/mine/sft.jsonl
    python data.py --convert hh-rlhf train.jsonl runs/mine/comparisons.jsonl

Deviations from the paper:
1. A plain-text template instead of the API's raw prompts: the instruction and response are
   marked so a small model can tell them apart.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
from pathlib import Path

TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"


def format_prompt(prompt: str) -> str:
    """The one instruction template; the response and then the end-of-text token follow it."""
    return TEMPLATE.format(prompt=prompt)


# ----------------------------------------------------------------------------- reading and writing
class DataError(ValueError):
    """A malformed record; the message names the file, the line and the field."""


def write_atomic(path, write) -> None:
    """write(tmp_path) fills a temporary file beside path, which then replaces path in one
    rename: a reader never sees half a file. If writing fails, the temporary file is removed
    and path is left as it was; a full disk is said in plain words."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        # torch.save reports a full disk as a RuntimeError about zip offsets: look at the disk
        full = (isinstance(e, OSError) and e.errno == errno.ENOSPC) or (
            not isinstance(e, KeyboardInterrupt) and shutil.disk_usage(path.parent).free < 2**20)
        tmp.unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, f"{path}: no space left on device; the partial "
                          f"{tmp.name} was removed and {path.name} is as it was: free some "
                          f"space and run the command again") from None
        raise


def write_jsonl(path, records) -> None:
    """One JSON object per line, written to a temporary file first, then renamed."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    write_atomic(path, write)


def _not_utf8(path, lineno: int, byte: int, column: int) -> DataError:
    return DataError(f"{path}:{lineno}: not UTF-8 text (byte 0x{byte:02x} at column {column}); "
                     f"save the file as UTF-8")


def _decode(path, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a BOM is allowed
    except UnicodeDecodeError as e:
        raise _not_utf8(path, lineno, raw[e.start], e.start + 1) from None


def read_text(path) -> str:
    """A whole UTF-8 text file; a byte that is not UTF-8 is a DataError naming its line."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        raise _not_utf8(path, raw.count(b"\n", 0, e.start) + 1, raw[e.start],
                        e.start - line_start + 1) from None


def _lines(path) -> list[tuple[int, dict]]:
    """(line number, object) pairs. Blank lines are allowed only at the end of the file, and
    a file without a record is an error."""
    out, blank = [], None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = _decode(path, lineno, raw)
            if not line.strip():
                blank = blank or lineno
                continue
            if blank:
                raise DataError(f"{path}:{blank}: blank line inside the file")
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg} "
                                f"(column {e.colno})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, "
                                f"got {type(rec).__name__}")
            out.append((lineno, rec))
    if not out:
        raise DataError(f"{path}:1: no records (the file is empty); it needs one JSON object "
                        f"per line")
    return out


def read_jsonl(path) -> list[dict]:
    return [rec for _, rec in _lines(path)]


def _get(rec: dict, name: str, typ: type, where: str, default=None):
    if name not in rec:
        if default is None:
            raise DataError(f"{where}: missing field '{name}'")
        return default
    v = rec[name]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise DataError(f"{where}: field '{name}' must be {typ.__name__}, got {type(v).__name__}")
    return v


def check_prompt(rec: dict, where: str = "record") -> dict:
    """{"prompt", "category"}; a missing category becomes "user"."""
    prompt = _get(rec, "prompt", str, where)
    if not prompt.strip():
        raise DataError(f"{where}: field 'prompt' is empty")
    return {"prompt": prompt, "category": _get(rec, "category", str, where, "user")}


def check_sft(rec: dict, where: str = "record") -> dict:
    out = check_prompt(rec, where)
    return {"prompt": out["prompt"], "response": _get(rec, "response", str, where),
            "category": out["category"]}


def check_comparison(rec: dict, where: str = "record") -> dict:
    """K = 2..9 responses (paper: 4..9; 2 is a chosen/rejected pair), ranking best first."""
    out = check_prompt(rec, where)
    responses = _get(rec, "responses", list, where)
    if not 2 <= len(responses) <= 9:
        raise DataError(f"{where}: field 'responses' must hold 2 to 9 responses, "
                        f"got {len(responses)}")
    for i, r in enumerate(responses):
        if not isinstance(r, str):
            raise DataError(f"{where}: field 'responses[{i}]' must be str, got {type(r).__name__}")
    ranking = _get(rec, "ranking", list, where)
    if sorted(x if isinstance(x, int) and not isinstance(x, bool) else -1 for x in ranking) \
            != list(range(len(responses))):
        raise DataError(f"{where}: field 'ranking' must be a permutation of "
                        f"range({len(responses)}), got {ranking}")
    return {"prompt": out["prompt"], "responses": responses, "ranking": ranking,
            "category": out["category"]}


def read_prompts(path) -> list[dict]:
    return [check_prompt(r, f"{path}:{n}") for n, r in _lines(path)]


def read_sft(path) -> list[dict]:
    return [check_sft(r, f"{path}:{n}") for n, r in _lines(path)]


def read_comparisons(path) -> list[dict]:
    return [check_comparison(r, f"{path}:{n}") for n, r in _lines(path)]


# ----------------------------------------------------------------------------- converters
def from_hh_rlhf(record: dict) -> dict:
    """Anthropic HH-RLHF {"chosen", "rejected"} dialogues -> a K = 2 comparison."""
    marker, cut = "\n\nAssistant:", {}
    for key in ("chosen", "rejected"):
        text = _get(record, key, str, "record")
        i = text.rfind(marker)
        if i < 0:
            raise DataError(f"field '{key}' has no Assistant turn")
        cut[key] = (text[:i], text[i + len(marker):].strip())
    if cut["chosen"][0] != cut["rejected"][0]:
        raise DataError("fields 'chosen' and 'rejected' differ before the last Assistant turn")
    return check_comparison({"prompt": cut["chosen"][0].strip(), "ranking": [0, 1],
                             "responses": [cut["chosen"][1], cut["rejected"][1]],
                             "category": "hh-rlhf"})


def from_alpaca(record: dict) -> dict:
    """Alpaca {"instruction", "input", "output"} -> an SFT record (input after the instruction)."""
    prompt = _get(record, "instruction", str, "record")
    extra = _get(record, "input", str, "record", "")
    return check_sft({"prompt": prompt + ("\n\n" + extra if extra.strip() else ""),
                      "response": _get(record, "output", str, "record"), "category": "alpaca"})


CONVERTERS = {"hh-rlhf": from_hh_rlhf, "alpaca": from_alpaca}


def convert_file(src, dst, fmt: str) -> int:
    """Convert a JSONL (or, as Alpaca ships, a JSON array) file; returns the record count."""
    text = read_text(src)
    if text.lstrip().startswith("["):
        try:
            rows = [(f"{src}:[{i}]", r) for i, r in enumerate(json.loads(text))]
        except json.JSONDecodeError as e:
            raise DataError(f"{src}:{e.lineno}: invalid JSON: {e.msg}") from None
    else:
        rows = [(f"{src}:{n}", r) for n, r in _lines(src)]
    out = []
    for where, r in rows:
        if not isinstance(r, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(r).__name__}")
        try:
            out.append(CONVERTERS[fmt](r))
        except DataError as e:
            raise DataError(f"{where}: {str(e).removeprefix('record: ')}") from None
    write_jsonl(dst, out)
    return len(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Convert a public dataset into this project's "
                                "JSONL formats (data.py). The simulated world's datasets are "
                                "written by: python -m world --out DIR")
    p.add_argument("--convert", nargs=3, metavar=("FORMAT", "SRC", "DST"), required=True,
                   help=f"FORMAT is one of: {', '.join(CONVERTERS)}")
    fmt, src, dst = p.parse_args(argv).convert
    if fmt not in CONVERTERS:
        p.error(f"--convert FORMAT must be one of {sorted(CONVERTERS)}")
    n = convert_file(src, dst, fmt)
    print(f"wrote {n} records to {dst}")
    return n


if __name__ == "__main__":
    try:
        main()
    except (DataError, OSError) as e:  # a user's error: one line, no traceback
        raise SystemExit(f"error: {e}") from None
