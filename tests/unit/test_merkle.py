"""RFC 9162 Merkle tree math: the RFC 6962 test vectors, generated proofs, systematically corrupted proofs.

The vectors are the certificate-transparency test data as carried by transparency-dev/merkle
(testonly/constants.go, proof/verify_test.go); the corruption classes follow that file's
corruptInclusionProof / corruptConsistencyProof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.hub import merkle
from renkei.hub.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAF_HASHES = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
# (index, size, proof) and (size1, size2, proof) from transparency-dev/merkle proof/verify_test.go.
INCLUSION_VECTORS = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY_VECTORS = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
MAX_SYSTEMATIC = 17  # every index / size pair up to here; covers perfect and ragged trees of several heights


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH straight from the RFC 9162 §2.1.1 definition, independent of the compact range."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def tree(size: int) -> list[bytes]:
    """The 8 RFC 6962 leaves, then further distinct leaves."""
    extra = [leaf_hash(i.to_bytes(4, "big")) for i in range(len(LEAVES), size)]
    return (LEAVES + extra)[:size]


def hexes(values: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


# --- vectors ------------------------------------------------------------------------------------------------


def test_leaf_and_node_hashes_use_the_rfc_prefixes() -> None:
    assert [h.hex() for h in LEAVES] == LEAF_HASHES
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(LEAVES[0], LEAVES[1]) == hashlib.sha256(b"\x01" + LEAVES[0] + LEAVES[1]).digest()
    assert EMPTY_ROOT.hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots_match_the_rfc6962_vectors(size: int) -> None:
    assert root(LEAVES[:size]).hex() == ROOTS[size]
    assert reference_root(LEAVES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    assert inclusion_proof(LEAVES[:size], index) == hexes(proof)
    assert verify_inclusion(index, size, LEAVES[index], hexes(proof), bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
def test_consistency_vectors(size1: int, size2: int, proof: list[str]) -> None:
    assert consistency_proof(LEAVES[:size2], size1) == hexes(proof)
    assert verify_consistency(
        size1, size2, hexes(proof), bytes.fromhex(ROOTS[size1]), bytes.fromhex(ROOTS[size2])
    )


def test_generated_proofs_verify_for_every_pair_up_to_33() -> None:
    leaves = tree(33)
    for size in range(1, 34):
        expected = reference_root(leaves[:size])
        assert root(leaves[:size]) == expected
        for index in range(size):
            assert verify_inclusion(
                index, size, leaves[index], inclusion_proof(leaves[:size], index), expected
            )
        for size1 in range(1, size + 1):
            proof = consistency_proof(leaves[:size], size1)
            assert verify_consistency(size1, size, proof, reference_root(leaves[:size1]), expected)


# --- systematic corruption (transparency-dev negative vector classes) --------------------------------------


def flipped(proof: list[bytes], i: int, mask: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


def corrupt_inclusion(
    index: int, size: int, proof: list[bytes], root_: bytes, leaf: bytes
) -> Iterator[tuple[str, int, int, list[bytes], bytes, bytes]]:
    yield "index - 1", index - 1, size, proof, root_, leaf
    yield "index + 1", index + 1, size, proof, root_, leaf
    yield "index ^ 2", index ^ 2, size, proof, root_, leaf
    yield "size * 2", index, size * 2, proof, root_, leaf
    yield "size / 2", index, size // 2, proof, root_, leaf
    yield "wrong leaf", index, size, proof, root_, b"WrongLeaf"
    yield "wrong leaf hash", index, size, proof, root_, leaf_hash(b"other")
    yield "empty root", index, size, proof, EMPTY_ROOT, leaf
    yield "random root", index, size, proof, SOME_HASH, leaf
    yield "trailing garbage", index, size, [*proof, b""], root_, leaf
    yield "trailing root", index, size, [*proof, root_], root_, leaf
    yield "preceding garbage", index, size, [b"", *proof], root_, leaf
    yield "preceding root", index, size, [root_, *proof], root_, leaf
    for i in range(len(proof)):
        yield f"proof[{i}] bit 3", index, size, flipped(proof, i, 8), root_, leaf
        last_flipped = proof[i][:-1] + bytes([proof[i][-1] ^ 1])
        yield f"proof[{i}] last bit", index, size, [*proof[:i], last_flipped, *proof[i + 1 :]], root_, leaf
        yield f"removed proof[{i}]", index, size, proof[:i] + proof[i + 1 :], root_, leaf
        yield f"inserted at {i}", index, size, [*proof[:i], SOME_HASH, *proof[i:]], root_, leaf
        yield f"proof[{i}] short", index, size, [*proof[:i], proof[i][:31], *proof[i + 1 :]], root_, leaf
    if len(proof) > 1:
        yield "swapped components", index, size, [proof[1], proof[0], *proof[2:]], root_, leaf


def test_every_corrupted_inclusion_proof_is_rejected() -> None:
    leaves = tree(MAX_SYSTEMATIC)
    for size in range(1, MAX_SYSTEMATIC + 1):
        good_root = root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(leaves[:size], index)
            assert verify_inclusion(index, size, leaves[index], proof, good_root)
            for desc, i, n, p, r, leaf in corrupt_inclusion(index, size, proof, good_root, leaves[index]):
                if desc == "swapped components" and p[0] == p[1]:
                    continue
                assert not verify_inclusion(i, n, leaf, p, r), f"index {index} size {size}: {desc} accepted"


def corrupt_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> Iterator[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    yield "size1 - 1", size1 - 1, size2, root1, root2, proof
    yield "size1 + 1", size1 + 1, size2, root1, root2, proof
    yield "size1 ^ 2", size1 ^ 2, size2, root1, root2, proof
    yield "size2 * 2", size1, size2 * 2, root1, root2, proof
    yield "size2 / 2", size1, size2 // 2, root1, root2, proof
    yield "wrong root1", size1, size2, b"WrongRoot", root2, proof
    yield "wrong root2", size1, size2, root1, b"WrongRoot", proof
    yield "other root1", size1, size2, SOME_HASH, root2, proof
    yield "other root2", size1, size2, root1, SOME_HASH, proof
    yield "swapped roots", size1, size2, root2, root1, proof
    yield "empty proof", size1, size2, root1, root2, []
    yield "trailing garbage", size1, size2, root1, root2, [*proof, b""]
    yield "trailing root1", size1, size2, root1, root2, [*proof, root1]
    yield "trailing root2", size1, size2, root1, root2, [*proof, root2]
    yield "preceding garbage", size1, size2, root1, root2, [b"", *proof]
    yield "preceding root1", size1, size2, root1, root2, [root1, *proof]
    yield "preceding root2", size1, size2, root1, root2, [root2, *proof]
    yield "preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]
    yield "truncated proof", size1, size2, root1, root2, proof[:-1]
    for i in range(len(proof)):
        yield f"proof[{i}] bit 4", size1, size2, root1, root2, flipped(proof, i, 16)
        yield f"removed proof[{i}]", size1, size2, root1, root2, proof[:i] + proof[i + 1 :]
        yield f"inserted at {i}", size1, size2, root1, root2, [*proof[:i], SOME_HASH, *proof[i:]]


def test_every_corrupted_consistency_proof_is_rejected() -> None:
    leaves = tree(MAX_SYSTEMATIC)
    for size2 in range(2, MAX_SYSTEMATIC + 1):
        root2 = root(leaves[:size2])
        for size1 in range(1, size2):
            root1 = root(leaves[:size1])
            proof = consistency_proof(leaves[:size2], size1)
            assert verify_consistency(size1, size2, proof, root1, root2)
            for desc, s1, s2, r1, r2, p in corrupt_consistency(size1, size2, root1, root2, proof):
                assert not verify_consistency(s1, s2, p, r1, r2), f"{size1}->{size2}: {desc} accepted"


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, SOME_HASH, EMPTY_ROOT, [], False),  # equal sizes need equal roots
        (1, 1, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 1, SOME_HASH, SOME_HASH, [], True),
        (1, 1, SOME_HASH, SOME_HASH, [EMPTY_ROOT], False),  # equal sizes need an empty proof
        (0, 1, EMPTY_ROOT, SOME_HASH, [], False),  # nothing can be proven from the empty tree
        (0, 1, EMPTY_ROOT, SOME_HASH, [SOME_HASH], False),
        (1, 0, SOME_HASH, EMPTY_ROOT, [], False),  # time travel to the past
        (2, 1, SOME_HASH, EMPTY_ROOT, [SOME_HASH], False),
        (1, 2, SOME_HASH, EMPTY_ROOT, [], False),  # empty proof
        (-1, 2, SOME_HASH, EMPTY_ROOT, [SOME_HASH], False),
        (1, 1 << 64, SOME_HASH, EMPTY_ROOT, [SOME_HASH], False),
    ],
)
def test_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    assert verify_consistency(size1, size2, proof, root1, root2) is ok


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1), (0, 1 << 64)])
def test_inclusion_out_of_range_is_rejected(index: int, size: int) -> None:
    assert not verify_inclusion(index, size, SOME_HASH, [], SOME_HASH)
    assert not verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)


def test_single_entry_tree_root_is_its_leaf_and_hash_sizes_are_checked() -> None:
    leaf = leaf_hash(b"data")
    assert verify_inclusion(0, 1, leaf, [], leaf)
    assert not verify_inclusion(0, 1, b"", [], leaf)
    assert not verify_inclusion(0, 1, leaf, [], b"")
    assert not verify_inclusion(0, 1, leaf + b"\0", [], leaf + b"\0")


def test_consistency_recomputes_root1_before_trusting_the_proof() -> None:
    leaves = tree(8)
    proof = consistency_proof(leaves, 6)
    with pytest.raises(ProofError, match="root1"):
        root_from_consistency_proof(6, 8, proof, SOME_HASH)


def test_proof_generation_refuses_impossible_requests() -> None:
    with pytest.raises(ProofError):
        inclusion_proof(tree(3), 3)
    with pytest.raises(ProofError):
        consistency_proof(tree(3), 0)
    with pytest.raises(ProofError):
        consistency_proof(tree(3), 4)


# --- adversarial: only middle elements altered (immudb GHSA-672p-m5jq-mrh8) --------------------------------


@given(st.integers(3, 300), st.data())
def test_altering_only_a_middle_element_is_always_caught(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    full = root(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaves, index)
    size1 = data.draw(st.integers(1, size - 1))
    cproof = consistency_proof(leaves, size1)
    forged = data.draw(st.binary(min_size=32, max_size=32))
    if len(proof) > 2:
        i = data.draw(st.integers(1, len(proof) - 2))
        bad = [*proof[:i], forged, *proof[i + 1 :]]
        assert verify_inclusion(index, size, leaves[index], bad, full) is (forged == proof[i])
    if len(cproof) > 2:
        i = data.draw(st.integers(1, len(cproof) - 2))
        bad = [*cproof[:i], forged, *cproof[i + 1 :]]
        assert verify_consistency(size1, size, bad, root(leaves[:size1]), full) is (forged == cproof[i])


# --- the compact range --------------------------------------------------------------------------------------


def test_frontier_matches_the_compact_trees_of_the_vectors() -> None:
    level1 = ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"]  # fmt: skip
    frontier = Frontier()
    for leaf in LEAVES[:7]:
        frontier.append(leaf)
    assert [h.hex() for h in frontier.hashes] == [ROOTS[4], level1[2], LEAF_HASHES[6]]
    assert frontier.ranges() == [(0, 4), (4, 6), (6, 7)]
    assert frontier.root().hex() == ROOTS[7]


def test_frontier_round_trips_and_refuses_the_wrong_shape() -> None:
    frontier = Frontier()
    for leaf in tree(13):
        frontier.append(leaf)
        again = Frontier.from_hex(frontier.size, frontier.to_hex())
        assert again.hashes == frontier.hashes and again.root() == frontier.root()
    with pytest.raises(ValueError, match="needs 3 hashes"):
        Frontier.from_hex(13, frontier.to_hex()[:64])
    with pytest.raises(ValueError, match="whole number"):
        Frontier.from_hex(13, frontier.to_hex() + "ab")
    with pytest.raises(ValueError, match="32 bytes"):
        frontier.append(b"short")
