"""tokenizer.py: byte-level BPE trained here, served by tiktoken. Offline, CPU, a few seconds."""

import collections
import hashlib
import random

import pytest
import regex
import tiktoken
import tiktoken.load

import tokenizer as tok

WORDS = (
    "the a an of and to in is was it he she they we you fox cat dog bird ran saw ate found "
    "red blue green small big happy sad went home park tree ball apple market because said "
    "there their then when where what who why how don't it's I'm we're you've they'll"
).split()


def english(n_chars: int, seed: int = 0) -> str:
    """English-ish documents separated by EOT_TEXT: sentences, numbers, punctuation, newlines."""
    rng = random.Random(seed)
    lexicon = WORDS + ["".join(rng.choice("aeioulmnrstkp") for _ in range(5)) for _ in range(200)]
    docs, size = [], 0
    while size < n_chars:
        sentences = []
        for _ in range(rng.randint(1, 6)):
            words = [rng.choice(lexicon) for _ in range(rng.randint(2, 12))]
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
            sentences.append(" ".join(words).capitalize() + rng.choice(".!?,;") + " ")
        doc = rng.choice(["", "\n", "\n\n"]).join(sentences)
        docs.append(doc)
        size += len(doc)
    return tok.EOT_TEXT.join(docs)


@pytest.fixture(scope="module")
def enc():
    return tok.build_encoding(tok.train_bpe(english(100_000), 600))


def random_unicode(rng: random.Random, n: int) -> str:
    pools = [
        lambda: chr(rng.randint(32, 126)),  # ASCII
        lambda: chr(rng.randint(0x4E00, 0x9FFF)),  # CJK
        lambda: chr(rng.randint(0x1F300, 0x1FAFF)),  # emoji
        lambda: chr(rng.randint(0x0300, 0x036F)),  # combining marks, also after a space
        lambda: rng.choice([" ", "  ", "\t", "\n", "\r\n", "\n\n  ", "\u00a0", "\u3000"]) * 3,
        lambda: chr(rng.choice([rng.randint(0, 0xD7FF), rng.randint(0xE000, 0x10FFFF)])),
        lambda: rng.choice(["'s", "'ll", " don't", "<|endoftext|>", "<|", "123456789"]),
    ]
    return "".join(rng.choice(pools)() for _ in range(n))  # no lone surrogates: not UTF-8


def test_round_trip_arbitrary_unicode(enc):
    rng = random.Random(0)
    for _ in range(300):
        s = random_unicode(rng, rng.randint(0, 60))
        ids = tok.encode(enc, s)
        assert tok.decode(enc, ids) == s
        assert all(0 <= i < tok.eot_id(enc) for i in ids)


def test_literal_eot_in_text_is_ordinary_text(enc):
    s = "Tom wrote <|endoftext|> in his essay.<|endoftext|>"
    with pytest.raises(ValueError):  # tiktoken's default policy: why encode() exists
        enc.encode(s)
    ids = tok.encode(enc, s)
    assert tok.eot_id(enc) not in ids
    assert tok.decode(enc, ids) == s


def test_encode_corpus_puts_eot_exactly_at_separators(enc):
    docs = ["First doc.", "", "Second, with <| and |> and endoftext.", "Third\n\n", " last"]
    ids = tok.encode_corpus(enc, tok.EOT_TEXT.join(docs))
    eot = tok.eot_id(enc)
    assert ids.count(eot) == len(docs) - 1
    pieces, cur = [], []
    for i in ids:
        if i == eot:
            pieces.append(cur)
            cur = []
        else:
            cur.append(i)
    pieces.append(cur)
    assert [tok.decode(enc, p) for p in pieces] == docs
    assert pieces == [tok.encode(enc, d) for d in docs]


def test_save_load_same_ids_and_id(tmp_path, monkeypatch):
    ranks = tok.train_bpe(english(50_000, seed=1), 400)
    path = tmp_path / "run" / "tokenizer.tiktoken"
    tok.save_tokenizer(ranks, path)
    loaded = tok.load_tokenizer(path)
    built = tok.build_encoding(ranks)
    text = english(5_000, seed=2)
    assert tok.encode_corpus(loaded, text) == tok.encode_corpus(built, text)
    assert tok.tokenizer_id(loaded) == tok.tokenizer_id(built)
    # the id is the saved file's sha256, and the file is tiktoken's own format
    assert tok.tokenizer_id(loaded) == "bpe-" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no caching of local files by path
    assert tiktoken.load.load_tiktoken_bpe(str(path)) == ranks
    assert tok.get_encoding(str(path)).encode_ordinary(text) == built.encode_ordinary(text)
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temp file left behind
    other = tok.build_encoding(tok.train_bpe(english(50_000, seed=3), 400))
    assert tok.tokenizer_id(other) != tok.tokenizer_id(built)


def test_missing_and_corrupt_files_say_what_to_do(tmp_path):
    missing = tmp_path / "nope.tiktoken"
    with pytest.raises(FileNotFoundError) as e:
        tok.load_tokenizer(missing)
    assert str(missing) in str(e.value) and "python tokenizer.py --data" in str(e.value)

    ranks = tok.train_bpe(english(20_000), 300)
    good = tmp_path / "good.tiktoken"
    tok.save_tokenizer(ranks, good)
    lines = good.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.tiktoken"
    cases = {
        b"this is not base64\n": "line 1",
        b"!!!! 0\n": "line 1",
        b"".join(lines[:10]) + b"QUJD notanumber\n": "line 11",
        b"".join(lines[:10]) + lines[3]: "line 11",  # a repeated rank
        b"".join(lines[1:]): "line 1",  # ranks must start at 0
        b"".join(lines[:100]): "256 single bytes",  # truncated
    }
    for content, where in cases.items():
        bad.write_bytes(content)
        with pytest.raises(ValueError) as e:
            tok.load_tokenizer(bad)
        assert "corrupt tokenizer file" in str(e.value) and str(bad) in str(e.value)
        assert where in str(e.value) and "python tokenizer.py --data" in str(e.value)


@pytest.mark.parametrize("vocab_size", [257, 300, 1000])
def test_vocab_size_exact(vocab_size):
    ranks = tok.train_bpe(english(50_000), vocab_size)
    assert sorted(ranks.values()) == list(range(vocab_size - 1))
    assert all(ranks[bytes([b])] == b for b in range(256))
    enc = tok.build_encoding(ranks)
    assert enc.n_vocab == vocab_size and tok.eot_id(enc) == vocab_size - 1


def test_bad_vocab_sizes():
    with pytest.raises(ValueError, match="257"):
        tok.train_bpe("hello", 256)
    with pytest.warns(UserWarning, match="single token"):  # nothing left to merge: stop
        assert len(tok.train_bpe("hello hello", 300)) == 256 + 5


def test_merges_in_frequency_order_by_hand():
    # Pre-tokens "aaab" x1 and " aaab" x2. Counts: (a,a) 6 -> "aa" first. Then (aa,a) 3 and
    # (a,b) 3 tie: the pair of earlier tokens wins, "ab" (97, 98) before (256, 97). Then
    # (aa,ab) 3 -> "aaab", then (" ",aaab) 2 -> " aaab", and nothing is left to merge.
    ranks = tok.train_bpe("aaab aaab aaab", 256 + 4 + 1)
    learned = sorted((r, t) for t, r in ranks.items() if r >= 256)
    assert [t for _, t in learned] == [b"aa", b"ab", b"aaab", b" aaab"]
    with pytest.warns(UserWarning):
        assert tok.train_bpe("aaab aaab aaab", 256 + 5 + 1) == ranks


def test_no_merge_across_or_of_the_separator():
    # Without the split, "<|", "endoftext", "o<" ... would be the most frequent pairs.
    text = tok.EOT_TEXT.join(["hello"] * 200)
    ranks = tok.train_bpe(text, 256 + 4 + 1)  # h-e-l-l-o allows exactly 4 merges
    assert all(t in b"hello" for t, r in ranks.items() if r >= 256)
    with pytest.warns(UserWarning):
        assert tok.train_bpe(text, 256 + 5 + 1) == ranks


def test_document_order_does_not_change_the_ranks():
    docs = english(30_000).split(tok.EOT_TEXT)
    shuffled = docs[:]
    random.Random(0).shuffle(shuffled)
    join = tok.EOT_TEXT.join
    assert list(tok.train_bpe(join(docs), 400)) == list(tok.train_bpe(join(shuffled), 400))


def textbook_bpe(words: collections.Counter, n_merges: int) -> tuple[list, dict]:
    """The slow reference: recount every pair at every step, merge the most frequent (ties: the
    pair of earliest tokens), replace it left to right. Returns merges and final segmentations."""
    ranks = {bytes([b]): b for b in range(256)}
    seg = {w: [bytes([b]) for b in w.encode()] for w in words}
    merges = []
    for _ in range(n_merges):
        counts = collections.Counter()
        for w, parts in seg.items():
            for pair in zip(parts, parts[1:], strict=False):
                counts[pair] += words[w]
        x, y = max(counts, key=lambda p: (counts[p], -ranks[p[0]], -ranks[p[1]]))
        merges.append((x, y))
        ranks[x + y] = len(ranks)
        for w, parts in seg.items():
            out, i = [], 0
            while i < len(parts):
                if parts[i : i + 2] == [x, y]:
                    out.append(x + y)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            seg[w] = out
    return merges, seg


@pytest.mark.parametrize("seed, n_merges", [(4, 150), (8, 400)])
def test_tiktoken_equals_the_textbook_reference(seed, n_merges):
    docs = english(10_000, seed).split(tok.EOT_TEXT)
    words = collections.Counter(w for d in docs for w in regex.findall(tok.GPT2_PATTERN, d))
    assert len(words) > 200
    ranks = tok.train_bpe(tok.EOT_TEXT.join(docs), 256 + n_merges + 1)
    merges, seg = textbook_bpe(words, n_merges)
    assert sorted(ranks, key=ranks.get)[256:] == [x + y for x, y in merges]  # same order
    enc = tok.build_encoding(ranks)
    for w in words:
        assert enc.encode_ordinary(w) == [ranks[t] for t in seg[w]], w
    # and on the whole text: tiktoken reproduces the segmentation training ended with
    expected = [ranks[t] for d in docs for w in regex.findall(tok.GPT2_PATTERN, d) for t in seg[w]]
    ids = tok.encode_corpus(enc, tok.EOT_TEXT.join(docs))
    assert [i for i in ids if i != tok.eot_id(enc)] == expected


def test_python_merge_rule_equals_tiktoken_on_unseen_text(enc):
    ranks = enc._mergeable_ranks
    vocab = sorted(ranks, key=ranks.get)
    rng = random.Random(5)
    text = english(20_000, seed=6) + random_unicode(rng, 500)
    for piece in set(regex.findall(tok.GPT2_PATTERN, text)):
        piece_bytes = piece.encode()
        assert tok.tiktoken_merge(list(piece_bytes), vocab, ranks) == enc.encode_ordinary(piece)


def test_trains_on_2mb_to_2048():
    text = english(2_000_000, seed=7)
    ranks = tok.train_bpe(text, 2048)
    enc = tok.build_encoding(ranks)
    ids = tok.encode_corpus(enc, text)
    assert len(ranks) == 2047 and max(ids) == 2047
    assert len(text.encode()) / len(ids) > 3  # the words of a small world become single tokens
    assert tok.decode(enc, ids) == text


def test_gpt2_offline_error_is_clear(monkeypatch):
    def offline(name):
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(RuntimeError) as e:
        tok.get_encoding("gpt2")
    msg = str(e.value)
    assert "network" in msg and "TIKTOKEN_CACHE_DIR" in msg and "python tokenizer.py" in msg


def test_gpt2_id_and_eot(monkeypatch):
    # A stand-in named like tiktoken's GPT-2 encoding (the real one needs a download once).
    ranks = {bytes([b]): b for b in range(256)}
    fake = tiktoken.Encoding(
        "gpt2",
        pat_str=tok.GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={tok.EOT_TEXT: 50256},
        explicit_n_vocab=None,
    )
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: fake)
    enc = tok.get_encoding("gpt2")
    assert tok.tokenizer_id(enc) == "gpt2" and tok.eot_id(enc) == 50256
    with pytest.raises(ValueError):
        tok.build_encoding(ranks, name="gpt2")
