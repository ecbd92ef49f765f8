"""Which KV blocks each request holds; prefix caching by a hash chain over full blocks."""

from __future__ import annotations

from dataclasses import dataclass

from vllm.core.block_pool import BlockPool, KVBlock
from vllm.core.request import Request

_ROOT_HASH = 0x5BD1E995  # parent hash of a request's first block


def hash_block(parent_hash: int, token_ids: tuple[int, ...]) -> int:
    """Content hash of one full block given its parent's (ints/tuples hash deterministically)."""
    return hash((parent_hash, token_ids))


def update_block_hashes(request: Request, block_size: int, upto_tokens: int) -> None:
    """Extend ``request.block_hashes`` to cover the full blocks among the first ``upto_tokens``."""
    hashes = request.block_hashes
    tokens = request.all_token_ids
    num_full = min(upto_tokens, len(tokens)) // block_size
    parent = hashes[-1] if hashes else _ROOT_HASH
    for i in range(len(hashes), num_full):
        parent = hash_block(parent, tuple(tokens[i * block_size : (i + 1) * block_size]))
        hashes.append(parent)


@dataclass
class PrefixCacheStats:
    queries: int = 0  # prompt tokens looked up
    hits: int = 0  # of which found in the cache


class KVCacheManager:
    def __init__(self, num_blocks: int, block_size: int, enable_caching: bool = True) -> None:
        self.block_size = block_size
        self.enable_caching = enable_caching
        self.pool = BlockPool(num_blocks, enable_caching)
        self.req_to_blocks: dict[str, list[KVBlock]] = {}
        self._num_cached_blocks: dict[str, int] = {}
        self.stats = PrefixCacheStats()

    @property
    def num_blocks(self) -> int:
        return self.pool.num_blocks

    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free_blocks

    def usage(self) -> float:
        return self.pool.usage()

    def block_ids(self, request_id: str) -> list[int]:
        return [b.block_id for b in self.req_to_blocks.get(request_id, [])]

    def get_computed_blocks(self, request: Request) -> list[KVBlock]:
        """Longest cached prefix (whole blocks) of a request that has nothing computed yet.
        At least one token is always left to compute, so the step produces logits."""
        if not self.enable_caching or request.num_computed_tokens > 0:
            return []
        if request.sampling_params.prompt_logprobs is not None:
            return []  # every prompt position must be computed to get its logprobs
        update_block_hashes(request, self.block_size, request.num_tokens)
        max_blocks = (request.num_tokens - 1) // self.block_size
        hits: list[KVBlock] = []
        for block_hash in request.block_hashes[:max_blocks]:
            block = self.pool.lookup(block_hash)
            if block is None:
                break
            hits.append(block)
        return hits

    def allocate_slots(
        self, request: Request, num_new_tokens: int, new_computed_blocks: list[KVBlock] | None = None
    ) -> list[int] | None:
        """Reserve room for ``num_new_tokens`` more tokens after the computed ones (and the
        cache-hit blocks). Returns the ids of the blocks added to the request, or None (and
        changes nothing) when not enough blocks are free."""
        hits = new_computed_blocks or []
        blocks = self.req_to_blocks.get(request.request_id, [])
        if not hits and blocks:  # the common decode step: room in the last block, nothing to cache
            total = request.num_computed_tokens + num_new_tokens
            if total <= len(blocks) * self.block_size and (
                not self.enable_caching
                or total // self.block_size <= self._num_cached_blocks.get(request.request_id, 0)
            ):
                return []
        num_computed = request.num_computed_tokens + len(hits) * self.block_size
        total = num_computed + num_new_tokens
        need = max(0, -(-total // self.block_size) - len(blocks) - len(hits))
        reclaimable_hits = sum(1 for b in hits if b.ref_cnt == 0)
        if need > self.pool.num_free_blocks - reclaimable_hits:
            return None
        if request.num_computed_tokens == 0 and not blocks:
            self.stats.queries += request.num_tokens
            self.stats.hits += len(hits) * self.block_size
        self.pool.touch(hits)
        added = hits + self.pool.get_new_blocks(need)
        blocks = self.req_to_blocks.setdefault(request.request_id, [])
        blocks.extend(added)
        if self.enable_caching:
            self._cache_full_blocks(request, blocks, total)
        return [b.block_id for b in added]

    def _cache_full_blocks(self, request: Request, blocks: list[KVBlock], num_tokens: int) -> None:
        # Only blocks whose tokens are all known can be hashed: a slot reserved for a pending
        # sampled token (scheduled ahead) is cached on a later step.
        num_full = min(num_tokens, request.num_tokens) // self.block_size
        start = self._num_cached_blocks.get(request.request_id, 0)
        if num_full <= start:
            return
        update_block_hashes(request, self.block_size, num_tokens)
        for i in range(start, num_full):
            self.pool.cache_block(blocks[i], request.block_hashes[i])
        self._num_cached_blocks[request.request_id] = num_full

    def free(self, request: Request) -> None:
        """Return every block of the request (tail first, so shared prefixes are evicted last)."""
        blocks = self.req_to_blocks.pop(request.request_id, [])
        self._num_cached_blocks.pop(request.request_id, None)
        self.pool.free_blocks(list(reversed(blocks)))

    def reset_prefix_cache(self) -> bool:
        return self.pool.reset_prefix_cache()
