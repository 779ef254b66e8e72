"""Tests for data.py: the prompt template, the JSONL readers and writers (bad input names its
file, line and field), the converters of public datasets, and that it never loads the world."""

import json
import subprocess
import sys

import pytest

import data


def test_format_prompt_uses_the_one_template():
    assert data.format_prompt("Hi?") == "### Instruction:\nHi?\n\n### Response:\n"


# ----------------------------------------------------------------------------- I/O
GOOD_CMP = {"prompt": "p", "responses": ["a", "b", "c", "d"], "ranking": [2, 0, 3, 1]}


@pytest.mark.parametrize("reader, lines, where, word", [
    (data.read_sft, ['{"prompt": "p", "response": "r"}', '{"prompt": "p", "response": '],
     2, "invalid JSON"),
    (data.read_sft, ['{"prompt": "p"}'], 1, "'response'"),
    (data.read_sft, ['{"prompt": "p", "response": 3}'], 1, "'response'"),
    (data.read_prompts, ['{"prompt": "p"}', '["p"]'], 2, "JSON object"),
    (data.read_prompts, ['{"prompt": ""}'], 1, "'prompt'"),
    (data.read_prompts, ['{"prompt": "p", "category": 1}'], 1, "'category'"),
    (data.read_prompts, ['{"prompt": "p"}', '', '{"prompt": "q"}'], 2, "blank line"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, responses=["a"], ranking=[0]))], 1,
     "'responses'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, responses=["a"] * 10,
                                             ranking=list(range(10))))], 1, "'responses'"),
    (data.read_comparisons, [json.dumps(GOOD_CMP),
                             json.dumps(dict(GOOD_CMP, ranking=[0, 0, 1, 2]))], 2, "'ranking'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, ranking=[0, 1, 2]))], 1, "'ranking'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, ranking="0123"))], 1, "'ranking'"),
    (data.read_comparisons, [json.dumps(dict(GOOD_CMP, responses=["a", 2, "c", "d"]))], 1,
     "'responses[1]'"),
])
def test_readers_name_file_line_and_field(tmp_path, reader, lines, where, word):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(data.DataError) as err:
        reader(path)
    assert isinstance(err.value, ValueError)
    assert f"{path}:{where}:" in str(err.value) and word in str(err.value)


def test_readers_accept_valid_files(tmp_path):
    path = tmp_path / "c.jsonl"
    recs = [dict(GOOD_CMP, category="x"), {"prompt": "q", "responses": ["good", "bad"],
                                           "ranking": [0, 1]},
            {"prompt": "q", "responses": list("abcdefghi"), "ranking": list(range(9))[::-1]}]
    data.write_jsonl(path, recs)
    path.write_text(path.read_text() + "\n\n")  # trailing blank lines are fine
    got = data.read_comparisons(path)
    assert [len(r["responses"]) for r in got] == [4, 2, 9] and got[0]["ranking"] == [2, 0, 3, 1]
    assert got[1]["category"] == "user"


def test_converters_bring_public_formats_in(tmp_path):
    hh = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?\n\nAssistant: 4.",
          "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?\n\nAssistant: 5."}
    src = tmp_path / "hh.jsonl"
    src.write_text(json.dumps(hh) + "\n")
    data.main(["--convert", "hh-rlhf", str(src), str(tmp_path / "cmp.jsonl")])
    [rec] = data.read_comparisons(tmp_path / "cmp.jsonl")
    assert rec["prompt"] == "Human: Hi\n\nAssistant: Hello!\n\nHuman: What is 2+2?"
    assert rec["responses"] == ["4.", "5."] and rec["ranking"] == [0, 1]

    alpaca = [{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
              {"instruction": "Say hi.", "input": "", "output": "Hi!"}]
    (tmp_path / "alpaca.json").write_text(json.dumps(alpaca))  # Alpaca ships a JSON array
    assert data.convert_file(tmp_path / "alpaca.json", tmp_path / "sft.jsonl", "alpaca") == 2
    recs = data.read_sft(tmp_path / "sft.jsonl")
    assert recs[0] == {"prompt": "Add the numbers.\n\n2 and 3", "response": "5",
                       "category": "alpaca"}
    assert recs[1]["prompt"] == "Say hi."

    bad = dict(hh, rejected="\n\nHuman: Bye\n\nAssistant: 5.")
    src.write_text(json.dumps(hh) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(data.DataError, match=r"hh.jsonl:2: .*differ"):
        data.convert_file(src, tmp_path / "x.jsonl", "hh-rlhf")
    src.write_text(json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(data.DataError, match=r"hh.jsonl:1: missing field 'output'"):
        data.convert_file(src, tmp_path / "x.jsonl", "alpaca")


def test_cli_converts_and_names_the_world_command(tmp_path, capsys):
    with pytest.raises(SystemExit):
        data.main(["--help"])
    assert "python -m world --out DIR" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        data.main(["--convert", "csv", "a", "b"])


def test_data_formats_never_load_the_world():
    code = "import sys, data; sys.exit(any(m.split('.')[0] == 'world' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=data.__file__.rsplit("/", 1)[0]
                          ).returncode == 0
