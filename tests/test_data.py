"""Tests for data.py: the prompt template, the JSONL readers and writers (bad input names its
file, line and field), the converters of public datasets, and that it never loads the world."""

import json
import random
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


# ----------------------------------------------------------------------------- bad bytes
def test_bytes_that_are_not_utf8_are_named_by_file_and_line(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_bytes(b'{"prompt": "p", "response": "r"}\n{"prompt": "p\xff", "response": "r"}\n')
    with pytest.raises(data.DataError, match=r"sft\.jsonl:2: not UTF-8 text \(byte 0xff at "
                                             r"column 14\)"):
        data.read_sft(path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes("a fox eats berries.\nthe fox is \u00e9red.\n".encode()[:-6] + b"\xc3(.\n")
    with pytest.raises(data.DataError, match=r"corpus\.txt:2: not UTF-8 text"):
        data.read_text(corpus)
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "p", "response": "r"}\n')  # a BOM is fine
    assert data.read_sft(path)[0]["prompt"] == "p"


def test_an_empty_file_is_an_error_that_says_so(tmp_path):
    for text in ("", "\n\n"):
        (tmp_path / "prompts.jsonl").write_text(text)
        with pytest.raises(data.DataError, match=r"prompts\.jsonl:1: no records"):
            data.read_prompts(tmp_path / "prompts.jsonl")


def test_converters_name_an_element_that_is_not_an_object(tmp_path):
    src = tmp_path / "alpaca.json"
    src.write_text(json.dumps([{"instruction": "Say hi.", "input": "", "output": "Hi!"}, [1, 2]]))
    with pytest.raises(data.DataError, match=r"alpaca\.json:\[1\]: expected a JSON object, "
                                             r"got list"):
        data.convert_file(src, tmp_path / "sft.jsonl", "alpaca")
    assert not (tmp_path / "sft.jsonl").exists()


@pytest.mark.parametrize("reader, text", [
    (data.read_sft, '{"prompt": "What does a fox eat?", "response": "A fox eats berries."}\n'
                    '{"prompt": "Hi!", "response": "Hello.", "category": "chat"}\n'),
    (data.read_prompts, '{"prompt": "What does a fox eat?", "category": "open_qa"}\n'
                        '{"prompt": "Name two animals."}\n'),
    (data.read_comparisons, json.dumps(dict(GOOD_CMP, category="x")) + "\n"
     + json.dumps({"prompt": "q", "responses": ["a", "b"], "ranking": [1, 0]}) + "\n"),
    (data.read_jsonl, '{"context": "A fox eats", "choices": ["a", "b"], "answer": "a"}\n'),
    (data.read_text, "A fox eats berries.<|endoftext|>Mia has a cat.<|endoftext|>"),
])
def test_random_corruptions_give_success_or_one_clear_error(tmp_path, reader, text):
    """Each reader on 300 random corruptions of a valid file (bytes flipped, cut, inserted,
    duplicated): it returns, or raises a DataError whose message starts with the file."""
    rng, path = random.Random(0), tmp_path / "f.jsonl"
    raw = text.encode()
    for _ in range(300):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            op, i = rng.randrange(4), rng.randrange(len(b) + 1)
            if op == 0 and i < len(b):
                b[i] = rng.randrange(256)
            elif op == 1:
                del b[i:i + rng.randint(1, 12)]
            elif op == 2:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            else:
                b[i:i] = b[max(0, i - 8):i]
        path.write_bytes(bytes(b))
        try:
            reader(path)
        except data.DataError as e:
            assert str(e).startswith(f"{path}:"), str(e)
