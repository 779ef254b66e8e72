"""Byte-level BPE trained on our corpus, served as a real `tiktoken.Encoding`.

Where this sits: GPT-2 (Radford et al. 2019, Sec. 2.2) splits text into pre-tokens with a regex
and merges each pre-token's UTF-8 bytes by learned ranks, so any string encodes with no unknown
token. GPT-3 kept GPT-2's tokenizer, and InstructGPT (Ouyang et al. 2022) fine-tunes GPT-3, so
the paper's tokenizer is GPT-2's 50257-token BPE; the `gpt2` preset uses exactly that
(`get_encoding("gpt2")`). The `tiny` and `cpu` presets train a 1-10M parameter model, where 50257
embeddings would be most of the parameters and most of the vocabulary would never occur in our
small world; so we train the same kind of tokenizer, with a small vocabulary, on our corpus,
offline, and serve it through tiktoken so that both presets share one code path.

Command (pretrain.py also trains one when the run directory has none):
    python tokenizer.py --data corpus.txt --out DIR --vocab-size 2048   # -> DIR/tokenizer.tiktoken

Deviations from GPT-2:
1. Vocabulary 2048 by default (GPT-2: 50257), learned from our corpus.
2. Merge semantics are tiktoken's, not the pair list of GPT-2's encoder.py: a piece's adjacent
   parts merge when their concatenation is a token, lowest rank first, and a piece that is
   itself a token is returned whole. Training keeps every word in exactly that segmentation, so
   the saved ranks reproduce training exactly; on real text this matches the classic replay of
   pair merges in learned order (tested), and where the two rules could differ we follow tiktoken.
3. No byte-to-unicode remapping (GPT-2's bytes_to_unicode): tiktoken stores raw bytes.
4. `<|endoftext|>` is the only special token, id `vocab_size - 1`. In corpus.txt it separates
   documents (no merge crosses it); a literal "<|endoftext|>" typed by a user or found inside a
   document is ordinary text (`encode`), never a control token.
"""

import argparse
import base64
import collections
import hashlib
import heapq
import os
import time
import warnings
from pathlib import Path

import regex
import tiktoken

import data

EOT_TEXT = "<|endoftext|>"
# GPT-2's pre-tokeniser, as in tiktoken's "gpt2" encoding: contractions, letters, digits, other
# symbols (each with one optional leading space), then whitespace. No merge crosses its pieces.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
MAKE_CMD = "python tokenizer.py --data corpus.txt --out DIR"


# ----------------------------------------------------------------------------- training


def _merge_pair(
    ids: list[int], a: int, b: int, new: int, vocab: list[bytes], ranks: dict[bytes, int]
) -> list[int] | None:
    """The classic BPE step: replace each adjacent (a, b) by `new`, left to right. Returns None
    where tiktoken's rule would go further: a neighbour of a new token makes a token with it."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
            left = out and vocab[out[-1]] + vocab[new] in ranks
            right = i + 2 < len(ids) and vocab[new] + vocab[ids[i + 2]] in ranks
            if left or right:
                return None
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def tiktoken_merge(ids: list[int], vocab: list[bytes], ranks: dict[bytes, int]) -> list[int]:
    """Segment one piece as tiktoken does (Rust `_byte_pair_merge`), from a given segmentation.

    A piece that is itself a token is returned whole; otherwise merge the adjacent pair whose
    concatenation has the lowest rank (leftmost on ties) until no adjacent pair is a token.
    """
    whole = b"".join(vocab[i] for i in ids)
    if whole in ranks:
        return [ranks[whole]]
    ids = list(ids)
    while len(ids) > 1:
        found = [
            (r, i)
            for i, (x, y) in enumerate(zip(ids, ids[1:], strict=False))
            if (r := ranks.get(vocab[x] + vocab[y])) is not None
        ]
        if not found:
            break
        rank, i = min(found)
        ids[i : i + 2] = [rank]
    return ids


def train_bpe(text: str, vocab_size: int) -> dict[bytes, int]:
    """Learn mergeable ranks: the 256 single bytes, then vocab_size - 257 merges in order.

    vocab_size counts the end-of-text token (id vocab_size - 1), which is not in the ranks.
    Each step merges the most frequent adjacent pair of tokens (ties: the pair of
    earliest-learned tokens), over the words of the corpus counted once each. A corpus with few
    distinct words can run out of pairs first (every word one token): training then stops there
    with a warning, and the vocabulary is smaller (use enc.n_vocab, not vocab_size).
    """
    if vocab_size < 257:
        raise ValueError(f"vocab_size={vocab_size}: need >= 257 (256 bytes + end-of-text)")
    # Pre-tokenise each document separately: the separator is never learned or merged across.
    pattern = regex.compile(GPT2_PATTERN)
    counter = collections.Counter()
    for doc in text.split(EOT_TEXT):
        counter.update(pattern.findall(doc))
    words = [w.encode("utf-8") for w in counter]  # each unique pre-token once ...
    freq = list(counter.values())  # ... with its number of occurrences
    word_index = {w: i for i, w in enumerate(words)}

    vocab = [bytes([b]) for b in range(256)]  # token id -> bytes; id == rank
    ranks = {t: i for i, t in enumerate(vocab)}
    parts = [list(w) for w in words]  # each word's current segmentation (token ids)
    counts = collections.Counter()  # (id, id) -> occurrences in the corpus
    where = collections.defaultdict(set)  # (id, id) -> words containing it
    for w, ids in enumerate(parts):
        for pair in zip(ids, ids[1:], strict=False):
            counts[pair] += freq[w]
            where[pair].add(w)
    # A max-heap with lazy deletion: an entry is live while its count is still current, so
    # finding the best pair costs log(#pairs) instead of a scan of every pair at every merge.
    heap = [(-c, a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)

    while len(vocab) < vocab_size - 1:
        while heap and counts.get(heap[0][1:]) != -heap[0][0]:
            heapq.heappop(heap)
        if not heap:  # every word is a single token: nothing is left to learn
            warnings.warn(
                f"train_bpe: every word of the corpus is a single token at {len(vocab) + 1} "
                f"tokens (with end-of-text); stopping short of vocab_size={vocab_size}",
                stacklevel=2,
            )
            break
        _, a, b = heapq.heappop(heap)
        token = vocab[a] + vocab[b]
        # Invariant: every word is held as tiktoken would segment it with the ranks so far, so no
        # adjacent pair is already a token; the new token's bytes are new, and no two ranks share
        # a byte string (which tiktoken's bytes -> rank table could not represent).
        assert token not in ranks, token
        ranks[token] = len(vocab)
        vocab.append(token)

        # Re-segment only the words that change, as tiktoken now would. The classic step (merge
        # each (a, b)) covers them all in practice; tiktoken's full rule takes the rest: a word
        # that is exactly the new token, one holding another split of its bytes, or one where a
        # new token makes a token with a neighbour (never seen on real text or in a fuzz, but it
        # keeps the ranks exact by construction). Each visit shortens a word, so training makes
        # at most (bytes - 1) visits per unique word: no recount of the corpus per merge.
        unusual = {word_index[token]} if token in word_index else set()
        for s in range(1, len(token)):
            p, q = ranks.get(token[:s]), ranks.get(token[s:])
            if (p, q) != (a, b) and p is not None and q is not None:
                unusual |= where.get((p, q), set())
        changed = set()
        for w in where[a, b] | unusual:
            old = parts[w]
            new = None if w in unusual else _merge_pair(old, a, b, ranks[token], vocab, ranks)
            if new is None:
                new = tiktoken_merge(old, vocab, ranks)
            parts[w] = new
            for pair in zip(old, old[1:], strict=False):
                counts[pair] -= freq[w]
                where[pair].discard(w)
                changed.add(pair)
            for pair in zip(new, new[1:], strict=False):
                counts[pair] += freq[w]
                where[pair].add(w)
                changed.add(pair)
        for pair in changed:
            if counts[pair] > 0:
                heapq.heappush(heap, (-counts[pair], *pair))
            else:
                del counts[pair], where[pair]
    return ranks


# ----------------------------------------------------------------------------- the Encoding


def build_encoding(ranks: dict[bytes, int], name: str = "bpe") -> tiktoken.Encoding:
    """A tiktoken.Encoding over our ranks, GPT-2's pattern, and end-of-text after the ranks."""
    if name == "gpt2":
        raise ValueError("the name 'gpt2' is reserved for tiktoken's GPT-2 encoding")
    return tiktoken.Encoding(
        name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT_TEXT: len(ranks)}
    )


def _ranks_file_bytes(ranks: dict[bytes, int]) -> bytes:
    """tiktoken's file format (as tiktoken.load.load_tiktoken_bpe reads): 'base64 rank' lines."""
    return b"".join(
        base64.b64encode(t) + b" %d\n" % r for t, r in sorted(ranks.items(), key=lambda kv: kv[1])
    )


def save_tokenizer(ranks: dict[bytes, int], path: str | os.PathLike) -> None:
    """Write the ranks atomically (a temp file, then a rename), so a reader never sees half."""
    data.write_atomic(path, lambda tmp: tmp.write_bytes(_ranks_file_bytes(ranks)))


def load_tokenizer(path: str | os.PathLike) -> tiktoken.Encoding:
    """Read a file written by save_tokenizer. Parsed here rather than with
    tiktoken.load.load_tiktoken_bpe, which caches files by path and could serve a stale copy."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenizer file {path} not found; it is made by: {MAKE_CMD}")
    ranks = {}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            token_b64, rank = line.split()
            token = base64.b64decode(token_b64, validate=True)
            if not token or token in ranks or int(rank) != len(ranks):
                raise ValueError("empty or repeated token, or ranks not 0, 1, 2, ... in order")
            ranks[token] = int(rank)
        except ValueError as e:  # binascii.Error is a ValueError too
            raise ValueError(
                f"corrupt tokenizer file {path}, line {n}: {line[:60]!r} ({e}); "
                f"remake it with: {MAKE_CMD}"
            ) from None
    if any(ranks.get(bytes([b])) != b for b in range(256)):
        raise ValueError(
            f"corrupt tokenizer file {path}: ranks 0-255 must be the 256 single "
            f"bytes; remake it with: {MAKE_CMD}"
        )
    return build_encoding(ranks)


def get_encoding(spec: str) -> tiktoken.Encoding:
    """tiktoken's GPT-2 encoding (the paper's tokenizer) for "gpt2", else a saved tokenizer."""
    if spec != "gpt2":
        return load_tokenizer(spec)
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:
        raise RuntimeError(
            f"could not load tiktoken's GPT-2 encoding ({type(e).__name__}: {e}). tiktoken "
            "downloads its files once and then caches them: run once with network access, or "
            "copy a cache into the directory named by TIKTOKEN_CACHE_DIR; or work offline with "
            f"a tokenizer trained on your corpus: {MAKE_CMD}"
        ) from e


def tokenizer_id(enc: tiktoken.Encoding) -> str:
    """Identity stored in checkpoints: "gpt2", or "bpe-" + the first 16 hex digits of the sha256
    of the saved file (the ranks in rank order). Computed from the Encoding's ranks on demand,
    which takes about a millisecond for 2048 tokens; the same ranks give the same id."""
    if enc.name == "gpt2":
        return "gpt2"
    return "bpe-" + hashlib.sha256(_ranks_file_bytes(enc._mergeable_ranks)).hexdigest()[:16]


def eot_id(enc: tiktoken.Encoding) -> int:
    return enc.eot_token


def encode(enc: tiktoken.Encoding, text: str) -> list[int]:
    """User or data text: a literal "<|endoftext|>" is ordinary text, never a control token."""
    return enc.encode_ordinary(text)


def encode_corpus(enc: tiktoken.Encoding, text: str) -> list[int]:
    """A corpus: documents separated by EOT_TEXT, each encoded as ordinary text and joined by
    the end-of-text id, so its separators, and only they, become EOT. tiktoken does exactly
    this when EOT_TEXT is an allowed special, in one call (5x faster than a batch of
    documents, whose thread pool costs more than it saves)."""
    return enc.encode(text, allowed_special={EOT_TEXT})


def decode(enc: tiktoken.Encoding, ids) -> str:
    """ids: any iterable of ints (a list, a tensor's .tolist(), a numpy array)."""
    return enc.decode([int(i) for i in ids])


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train a byte-level BPE on a corpus and "
        "write DIR/tokenizer.tiktoken (tiktoken's format)."
    )
    parser.add_argument(
        "--data", required=True, help=f"corpus.txt: documents separated by {EOT_TEXT}"
    )
    parser.add_argument("--out", required=True, help="run directory to write into")
    parser.add_argument(
        "--vocab-size", type=int, default=2048, help="tokens including end-of-text (GPT-2: 50257)"
    )
    args = parser.parse_args(argv)
    text = Path(args.data).read_text(encoding="utf-8")
    t0 = time.time()
    ranks = train_bpe(text, args.vocab_size)
    seconds = time.time() - t0
    path = Path(args.out) / "tokenizer.tiktoken"
    save_tokenizer(ranks, path)
    enc = load_tokenizer(path)
    n_tokens = len(encode_corpus(enc, text))
    print(
        f"{path}: vocab {enc.n_vocab} ({tokenizer_id(enc)}), "
        f"{len(text.encode('utf-8')) / n_tokens:.2f} bytes/token on {args.data}, "
        f"trained in {seconds:.1f}s"
    )


if __name__ == "__main__":
    main()
