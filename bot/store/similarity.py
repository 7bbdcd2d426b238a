"""Near-duplicate detection: MinHash signatures of character 3-grams, banded for LSH look-up.

Scam messages go round in copies that differ by a phone number, a link or a few words. Each
report's normalised text is cut into character 3-grams (whitespace ignored); 32 MinHash values
estimate the Jaccard similarity of two such sets; 8 bands of 4 values each are hashed into
buckets stored with the report, so that the reports sharing a bucket with a new text are the
candidates. Candidates are then checked with the exact Jaccard similarity, so the LSH only
decides what is compared, never what matches.

Every hash here comes from blake2b and fixed parameters: the buckets are stored in the
database, and Python's ``hash()`` differs from one process to the next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

SHINGLE_SIZE = 3
NUM_HASHES = 32
BANDS = 8
ROWS = NUM_HASHES // BANDS
#: The exact Jaccard similarity at or above which two texts are near duplicates.
NEAR_THRESHOLD = 0.6

_PRIME = (1 << 61) - 1  # a Mersenne prime above every 61-bit base hash
_BUCKET_MASK = (1 << 63) - 1  # buckets fit a signed 64-bit BIGINT


def _param_pair(i: int) -> tuple[int, int]:
    digest = hashlib.blake2b(f"antifraud-minhash-{i}".encode(), digest_size=16).digest()
    a = int.from_bytes(digest[:8], "big") % (_PRIME - 1) + 1
    b = int.from_bytes(digest[8:], "big") % _PRIME
    return a, b


_PARAMS: tuple[tuple[int, int], ...] = tuple(_param_pair(i) for i in range(NUM_HASHES))


def text_hash(normalized: str) -> str:
    """The sha256 hex digest of a normalised text, for exact look-ups."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def shingles(text: str) -> frozenset[str]:
    """The character 3-grams of ``text`` with whitespace removed; a shorter text is one shingle."""
    compact = "".join(text.split())
    if len(compact) < SHINGLE_SIZE:
        return frozenset({compact}) if compact else frozenset()
    return frozenset(compact[i : i + SHINGLE_SIZE] for i in range(len(compact) - SHINGLE_SIZE + 1))


def _base_hash(shingle: str) -> int:
    digest = hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _PRIME


def minhash(shingle_set: Iterable[str]) -> tuple[int, ...]:
    """The 32 MinHash values of a shingle set (all ``2**61 - 1`` for an empty set)."""
    bases = [_base_hash(s) for s in set(shingle_set)]
    if not bases:
        return (_PRIME,) * NUM_HASHES
    return tuple(min((a * x + b) % _PRIME for x in bases) for a, b in _PARAMS)


def bands(signature: Sequence[int]) -> list[int]:
    """The 8 LSH buckets of a signature, each a non-negative 63-bit integer."""
    if len(signature) != NUM_HASHES:
        raise ValueError(f"a signature has {NUM_HASHES} values, not {len(signature)}")
    buckets = []
    for band in range(BANDS):
        rows = signature[band * ROWS : (band + 1) * ROWS]
        data = bytes([band]) + b"".join(v.to_bytes(8, "big") for v in rows)
        digest = hashlib.blake2b(data, digest_size=8, person=b"antifraud-lsh").digest()
        buckets.append(int.from_bytes(digest, "big") & _BUCKET_MASK)
    return buckets


def text_bands(normalized: str) -> list[int]:
    """The buckets of a normalised text; none when it has no shingles (an empty text)."""
    shingle_set = shingles(normalized)
    return bands(minhash(shingle_set)) if shingle_set else []


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """The exact Jaccard similarity of two shingle sets (1.0 for two empty sets)."""
    set_a, set_b = set(a), set(b)
    if not set_a and not set_b:
        return 1.0
    return len(set_a & set_b) / len(set_a | set_b)


def similarity(text_a: str, text_b: str) -> float:
    """The exact Jaccard similarity of two normalised texts' shingle sets."""
    return jaccard(shingles(text_a), shingles(text_b))
