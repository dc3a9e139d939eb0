"""Eclat on bitsets of conditional databases, vectorised across siblings.

For each frequent item ``r`` (the least frequent first, in effect), the baskets containing it
form its conditional database; the items that are more frequent than ``r`` and frequent inside
that database get one bitset row each over those baskets only (``np.uint64`` words). A bitset
over the *whole* data would cost ``n_baskets / 8`` bytes per item — 125 kB per item for a
million baskets — whereas a conditional bitset costs ``count(r) / 8`` bytes and only for the
items that survive there, so memory stays bounded by the largest conditional database. (While
a frequent items x baskets *flag* matrix fits in 64 MiB, the conditional bitsets are cut out of
it rather than rebuilt from a second pass over the gathered prefixes.)

Inside a conditional database the search is the classic Eclat recursion, but a node handles
all its children at once: the support of every pair of sibling extensions is one 2-D AND plus
``np.bitwise_count`` over a block of rows, then the candidates of all children (pairs of each
child's extensions) are counted in one more blocked pass, and Python only recurses from
grandchildren with at least three frequent extensions. Results go out as block chunks (many
prefixes per array) that ``ranked.decode_chunks`` turns into tuples in bulk.
"""

from __future__ import annotations

import numpy as np

from crmlens.basket.ranked import RankedBaskets, gather_prefixes

# Largest block (in uint64 words) of the sibling-pair AND; bounds the scratch memory at 32 MiB.
_BLOCK_WORDS = 1 << 22
# Largest boolean scratch matrix (bytes) used to build a bitset matrix with np.packbits.
_DENSE_CELLS = 1 << 24

# (prefix, extension ranks, counts) or, for many prefixes at once, (prefixes (g x length),
# extensions per prefix, extension ranks, counts); see ranked.decode_chunks.
Chunk = tuple

# Largest global flag matrix (frequent items x baskets, bytes); above it conditional bitsets are
# built from the prefix gather instead.
_GLOBAL_BYTES = 1 << 26


def eclat_ranked(data: RankedBaskets, min_count: int, max_len: int) -> list[Chunk]:
    """Frequent itemsets of length >= 2, as chunks ``(prefix, extension ranks, counts)``.

    Each chunk stands for the itemsets ``prefix + (e,)`` with their counts; ranks, not item
    codes. Singletons are left to the caller (they are ``data.counts``).
    """
    out: list[Chunk] = []
    n = data.n_frequent
    if max_len < 2 or n < 2:
        return out
    rows = data.rows()
    # Vertical index: the entries of each rank, baskets in ascending order.
    # (a 16-bit key sorts by radix, several times faster than the 32-bit one)
    key = data.ranks.astype(np.int16) if n <= np.iinfo(np.int16).max else data.ranks
    by_rank = np.argsort(key, kind="stable")
    rank_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(data.ranks, minlength=n), out=rank_ptr[1:])
    deeper = max_len >= 3
    # A flag matrix over all baskets turns each conditional bitset matrix into a column
    # extraction (cost: extensions x count(r)) instead of a second pass over the gathered
    # prefixes; used only while it is small.
    every = None
    if deeper and n * data.n_baskets <= _GLOBAL_BYTES:
        every = np.zeros((n, data.n_baskets), dtype=bool)
        every[data.ranks, rows] = True
    for r in range(1, n):
        entries = by_rank[rank_ptr[r]:rank_ptr[r + 1]]
        tids = rows[entries]
        counts = np.bincount(_prefix_ranks(data.indptr, data.ranks, entries, tids), minlength=r)
        ext = np.flatnonzero(counts >= min_count)
        if len(ext) == 0:
            continue
        out.append(((r,), ext, counts[ext]))
        if not deeper or len(ext) < 2:
            continue
        if every is not None:
            bits = _extract(every, ext, tids)
        else:
            bits = _conditional(data, entries, tids, r, ext)
        _grow((r,), ext, bits, 2, min_count, max_len, out)
    return out


def _prefix_ranks(indptr: np.ndarray, ranks: np.ndarray, ends: np.ndarray,
                  rows: np.ndarray) -> np.ndarray:
    """The ranks before position ``ends[k]`` in basket ``rows[k]``, for every ``k``, concatenated.

    ``gather_prefixes`` without the owner of each entry, which the pair count does not need.
    """
    starts = indptr[rows]
    lengths = ends - starts
    total = int(lengths.sum())
    # position = start of the basket + offset inside the run: one repeat, one add (intp:
    # numpy would convert narrower indices before the take)
    positions = np.arange(total, dtype=np.intp)
    positions += np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return ranks[positions]


def _extract(every: np.ndarray, ext: np.ndarray, tids: np.ndarray) -> np.ndarray:
    """Rows ``ext`` of the global flags restricted to the baskets ``tids``, as bitsets."""
    width = (len(tids) + 63) // 64 * 64
    flags = np.zeros((len(ext), width), dtype=bool)
    flags[:, :len(tids)] = every[ext[:, None], tids[None, :]]
    return np.packbits(flags, axis=1, bitorder="little").view(np.uint64)


def _conditional(data: RankedBaskets, entries: np.ndarray, tids: np.ndarray, r: int,
                 ext: np.ndarray) -> np.ndarray:
    """The bitset matrix of ``ext`` over the baskets of ``r``, from its prefix gather."""
    items, local_tid = gather_prefixes(data.indptr, data.ranks, entries, tids)
    row_of = np.full(r, -1, dtype=np.int64)
    row_of[ext] = np.arange(len(ext))
    local_row = row_of[items]
    keep = local_row >= 0
    return _bitsets(local_row[keep], local_tid[keep], len(ext), len(tids))


def _bitsets(row: np.ndarray, tid: np.ndarray, n_rows: int, n_tids: int) -> np.ndarray:
    """A ``(n_rows, ceil(n_tids / 64))`` uint64 bitset matrix with bit ``tid`` set in ``row``."""
    words = (n_tids + 63) // 64
    if n_rows * words * 64 <= _DENSE_CELLS:
        # a small boolean scratch matrix packed by numpy beats a scattered bitwise_or.at
        flags = np.zeros((n_rows, words * 64), dtype=bool)
        flags[row, tid] = True
        return np.packbits(flags, axis=1, bitorder="little").view(np.uint64)
    bits = np.zeros(n_rows * words, dtype=np.uint64)
    np.bitwise_or.at(bits, row * words + (tid >> 6),
                     np.left_shift(np.uint64(1), (tid & 63).astype(np.uint64)))
    return bits.reshape(n_rows, words)


def _pair_counts(bits: np.ndarray) -> np.ndarray:
    """Support of every pair of rows of ``bits`` (an ``m x m`` matrix; the diagonal is junk)."""
    m, words = bits.shape
    counts = np.empty((m, m), dtype=np.int64)
    block = max(1, _BLOCK_WORDS // max(1, m * words))
    for a in range(0, m, block):
        both = bits[a:a + block, None, :] & bits[None, :, :]
        counts[a:a + block] = np.bitwise_count(both).sum(axis=2, dtype=np.int64)
    return counts


def _grow(prefix: tuple[int, ...], ext: np.ndarray, bits: np.ndarray, length: int,
          min_count: int, max_len: int, out: list[Chunk]) -> None:
    """Extend ``prefix + (ext[k],)`` (itemsets of ``length``) by their later siblings."""
    if len(ext) == 2:
        # the most common node by far: one pair, no matrix
        both = int(np.bitwise_count(bits[0] & bits[1]).sum())
        if both >= min_count:
            out.append((prefix + (int(ext[0]),), ext[1:], np.array([both], dtype=np.int64)))
        return
    counts = _pair_counts(bits)
    heads, tails = np.nonzero(counts >= min_count)
    upper = tails > heads
    heads, tails = heads[upper], tails[upper]
    if len(heads) == 0:
        return
    # one fancy index for the whole node; each child takes slices (views) of it
    found, found_counts = ext[tails], counts[heads, tails]
    bounds = np.flatnonzero(heads[1:] != heads[:-1]) + 1
    starts = np.concatenate(([0], bounds))
    sizes = np.diff(np.concatenate((starts, [len(heads)])))
    out.append((_prefixes(prefix, ext[heads[starts]]), sizes, found, found_counts))
    if length + 1 < max_len and sizes.max() >= 2:
        _grandchildren(prefix, ext, bits, heads, tails, starts, sizes, length, min_count,
                       max_len, out)


def _grandchildren(prefix: tuple[int, ...], ext: np.ndarray, bits: np.ndarray,
                   heads: np.ndarray, tails: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                   length: int, min_count: int, max_len: int, out: list[Chunk]) -> None:
    """Count the extensions of every child of a node at once, then recurse from grandchildren.

    Child ``k`` holds the frequent pairs ``(k, j)`` of positions ``starts[g]..`` in
    ``heads``/``tails``; its candidate extensions are the pairs ``(a, b)``, ``a < b``, of its
    tails, supported by ``bits[k] & bits[a] & bits[b]``. Counting all children's candidates in
    one blocked pass saves a Python call and a dozen numpy calls per child, which is what
    dominates when the itemset tree has millions of small nodes.
    """
    n = len(heads)
    group = np.repeat(np.arange(len(starts)), sizes)
    after = sizes[group] - 1 - (np.arange(n) - starts[group])  # later siblings of each pair
    total = int(after.sum())
    first = np.repeat(np.arange(n), after)
    second = first + 1 + (np.arange(total) - np.repeat(np.cumsum(after) - after, after))
    k, a, b = heads[first], tails[first], tails[second]
    support = _and_counts(bits, k, a, b)
    keep = support >= min_count
    if not keep.any():
        return
    first, b, support = first[keep], b[keep], support[keep]
    found = ext[b]
    bounds = np.flatnonzero(first[1:] != first[:-1]) + 1
    g_starts = np.concatenate(([0], bounds))
    g_ends = np.concatenate((bounds, [len(first)]))
    owners = first[g_starts]
    out.append((_prefixes(prefix, ext[heads[owners]], ext[tails[owners]]), g_ends - g_starts,
                found, support))
    if length + 2 >= max_len:
        return
    g_sizes = g_ends - g_starts
    # Grandchildren with exactly two extensions have one candidate: count them all at once.
    two = np.flatnonzero(g_sizes == 2)
    if len(two):
        kk, aa = heads[owners[two]], tails[owners[two]]
        b1, b2 = b[g_starts[two]], b[g_starts[two] + 1]
        support4 = _and_counts(bits, kk, aa, b1, b2)
        ok = support4 >= min_count
        if ok.any():
            out.append((_prefixes(prefix, ext[kk[ok]], ext[aa[ok]], ext[b1[ok]]),
                        np.ones(int(ok.sum()), dtype=np.int64), ext[b2[ok]], support4[ok]))
    for g in np.flatnonzero(g_sizes >= 3).tolist():
        s, e, p = int(g_starts[g]), int(g_ends[g]), int(owners[g])
        kk, aa = int(heads[p]), int(tails[p])
        _grow(prefix + (int(ext[kk]), int(ext[aa])), found[s:e],
              bits[b[s:e]] & (bits[kk] & bits[aa]), length + 2, min_count, max_len, out)


def _and_counts(bits: np.ndarray, *rows: np.ndarray) -> np.ndarray:
    """``popcount(bits[rows[0][i]] & bits[rows[1][i]] & ...)`` for every ``i``, in blocks."""
    total = len(rows[0])
    support = np.empty(total, dtype=np.int64)
    block = max(1, _BLOCK_WORDS // max(1, bits.shape[1]))
    for lo in range(0, total, block):
        hi = lo + block
        both = bits[rows[0][lo:hi]] & bits[rows[1][lo:hi]]
        for more in rows[2:]:
            both &= bits[more[lo:hi]]
        support[lo:hi] = np.bitwise_count(both).sum(axis=1, dtype=np.int64)
    return support


def _prefixes(prefix: tuple[int, ...], *columns: np.ndarray) -> np.ndarray:
    """A ``(g, len(prefix) + len(columns))`` array: ``prefix`` on every row, then the columns."""
    g = len(columns[0])
    rows = np.empty((g, len(prefix) + len(columns)), dtype=np.int64)
    rows[:, :len(prefix)] = prefix
    for i, column in enumerate(columns):
        rows[:, len(prefix) + i] = column
    return rows
