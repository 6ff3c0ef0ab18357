"""RFC 9162 §2.1 Merkle tree math for the audit log: tree heads, inclusion and consistency proofs.

Hashing (RFC 9162 §2.1.1, identical to RFC 6962): ``MTH({}) = SHA-256()``, a leaf is ``SHA-256(0x00 || d)``,
an inner node ``SHA-256(0x01 || left || right)``; the split point is the largest power of two below n. The
0x00/0x01 prefixes keep a leaf from ever being mistaken for an inner node (second-preimage resistance).

Proof generation follows the recursive definitions of RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF).
Verification is a port of transparency-dev/merkle ``proof/verify.go``: the proof length is fixed by the
sizes, every element is checked to be a 32-byte hash and takes part in the recomputation, and consistency
proofs recompute *both* roots. Nothing is taken on trust from the first or last element alone (the immudb
GHSA-672p-m5jq-mrh8 lesson).

All functions take and return raw 32-byte hashes; ``leaves`` always means leaf *hashes*.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
_MAX_SIZE = 1 << 64  # sizes and indices are uint64 in RFC 9162


class ProofError(ValueError):
    """A proof or its parameters are malformed, or the recomputed root does not match."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes (O(n), via the compact range)."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


# --- the compact range: what an appender must keep ---------------------------------------------------------


class Frontier:
    """Roots of the perfect subtrees that cover leaves [0, size), largest first (one per set bit of size).

    This is the RFC 9162 / transparency-dev "compact range" [0, size). Appending a leaf and computing the new
    root both cost O(log n), so an appender never has to read old leaves.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        hashes = list(hashes)
        if size < 0 or len(hashes) != size.bit_count() or any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(
                f"a frontier of size {size} needs {size.bit_count()} hashes of {HASH_SIZE} bytes"
            )
        self._size = size
        self._hashes = hashes

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        self._hashes.append(leaf)
        # Like a binary counter: each trailing 1-bit of the old size is a same-sized subtree to merge with.
        carry = self._size
        while carry & 1:
            right = self._hashes.pop()
            left = self._hashes.pop()
            self._hashes.append(node_hash(left, right))
            carry >>= 1
        self._size += 1

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def ranges(self) -> list[tuple[int, int]]:
        """The leaf range [start, end) under each frontier hash, in the same order."""
        spans: list[tuple[int, int]] = []
        start = 0
        for bit in reversed(range(self._size.bit_length())):
            if self._size >> bit & 1:
                spans.append((start, start + (1 << bit)))
                start += 1 << bit
        return spans

    def to_hex(self) -> str:
        return "".join(h.hex() for h in self._hashes)

    @classmethod
    def from_hex(cls, size: int, text: str) -> Frontier:
        width = 2 * HASH_SIZE
        if len(text) % width:
            raise ValueError("frontier text is not a whole number of hashes")
        return cls(size, (bytes.fromhex(text[i : i + width]) for i in range(0, len(text), width)))


# --- proof generation (RFC 9162 §2.1.3.1 and §2.1.4.1) -----------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[0:len(leaves)]): the audit path of one leaf, lowest level first."""
    if not 0 <= index < len(leaves):
        raise ProofError(f"index {index} is outside a tree of size {len(leaves)}")
    return _path(index, leaves)


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*_path(m, d[:k]), root(d[k:])]
    return [*_path(m - k, d[k:]), root(d[:k])]


def consistency_proof(leaves: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(size1, D[0:len(leaves)]): shows the tree of size1 is a prefix of this one."""
    if not 0 < size1 <= len(leaves):
        raise ProofError(f"no consistency proof from size {size1} to {len(leaves)}")
    return _subproof(size1, leaves, complete=True)


def _subproof(m: int, d: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [root(d)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, d[:k], complete=complete), root(d[k:])]
    return [*_subproof(m - k, d[k:], complete=False), root(d[:k])]


# --- verification (port of transparency-dev/merkle proof/verify.go) -----------------------------------------


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """True iff ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree (``size``, ``expected_root``)."""
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) == _hash_arg(expected_root, "root")
    except ProofError:
        return False


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    _check_size(size)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is beyond size {size}")
    seed = _hash_arg(leaf, "leaf hash")
    path = _hash_list(proof)
    inner, border = _decompose_inclusion(index, size)
    if len(path) != inner + border:
        raise ProofError(f"wrong proof size {len(path)}, want {inner + border}")
    acc = _chain_inner(seed, path[:inner], index)
    return _chain_border_right(acc, path[inner:])


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    """True iff ``proof`` shows the tree (size1, root1) is a prefix of the tree (size2, root2)."""
    try:
        return root_from_consistency_proof(size1, size2, proof, root1) == _hash_arg(root2, "root2")
    except ProofError:
        return False


def root_from_consistency_proof(size1: int, size2: int, proof: Sequence[bytes], root1: bytes) -> bytes:
    """Recompute root2; raises if the proof does not also reproduce ``root1``."""
    _check_size(size1)
    _check_size(size2)
    first = _hash_arg(root1, "root1")
    path = _hash_list(proof)
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == size2:
        if path:
            raise ProofError("size1 == size2, but the proof is not empty")
        return first
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if not path:
        raise ProofError("empty proof")

    inner, border = _decompose_inclusion(size1 - 1, size2)
    shift = _trailing_zeros(size1)
    inner -= shift  # shift < inner whenever size1 < size2

    # The proof starts with the root of the perfect subtree of size 2^shift ending at size1 - 1,
    # unless size1 is that very subtree, whose root the verifier already holds as root1.
    if size1 == 1 << shift:
        seed, rest = first, path
    else:
        seed, rest = path[0], path[1:]
    if len(rest) != inner + border:
        raise ProofError(f"wrong proof size {len(path)}")

    mask = (size1 - 1) >> shift  # chaining starts at level `shift`
    old = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if old != first:
        raise ProofError("the proof does not reproduce root1")
    return _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    """Lengths of the proof part below and above the point where the paths to index and size-1 diverge."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        seed = node_hash(seed, sibling) if (index >> level) & 1 == 0 else node_hash(sibling, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like _chain_inner, but only left siblings count: the hash of the older, smaller subtree."""
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def _check_size(size: int) -> None:
    if not 0 <= size < _MAX_SIZE:
        raise ProofError(f"tree size {size} out of range")


def _hash_arg(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte hash")
    return value


def _hash_list(proof: Sequence[bytes]) -> list[bytes]:
    # Every element must be a well-formed hash, not only those the arithmetic happens to read first.
    return [_hash_arg(element, f"proof[{i}]") for i, element in enumerate(proof)]
