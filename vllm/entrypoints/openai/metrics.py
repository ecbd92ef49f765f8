"""Prometheus metrics of `vllm serve` (one registry per app, so tests can build several)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
_E2E_BUCKETS = (0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                50.0, 60.0, 120.0, 240.0, 480.0)


class ServerMetrics:
    """Updated by AsyncLLM (per-token and per-request events, scheduler stats)."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        r, labels = self.registry, ["model_name"]

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=r).labels(model_name)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=r).labels(model_name)

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r).labels(model_name)

        self.running = gauge("vllm:num_requests_running", "Requests being scheduled")
        self.waiting = gauge("vllm:num_requests_waiting", "Requests waiting to be scheduled")
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage, 0-100 %")
        self.kv_blocks = gauge("vllm:kv_cache_allocated_blocks", "KV blocks held by requests")
        self.kv_total = gauge("vllm:kv_cache_total_blocks", "KV blocks in the cache")
        self.hit_rate = gauge("vllm:prefix_cache_hit_rate", "Prefix-cache hit rate, 0-1")
        self.preemptions = gauge("vllm:num_preemptions", "Preemptions since start")
        self.prefix_queries = gauge("vllm:prefix_cache_queries", "Prefix-cache queried tokens")
        self.prefix_hits = gauge("vllm:prefix_cache_hits", "Prefix-cache hit tokens")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Prompt tokens processed")
        self.generation_tokens = counter("vllm:generation_tokens", "Tokens generated")
        self.success = Counter("vllm:request_success", "Finished requests", ["model_name",
                               "finished_reason"], registry=r)
        self.aborted = counter("vllm:request_aborted", "Requests aborted (e.g. disconnects)")
        self.ttft = hist("vllm:time_to_first_token_seconds", "Time to first token",
                         _LATENCY_BUCKETS)
        self.itl = hist("vllm:inter_token_latency_seconds", "Time between tokens",
                        _LATENCY_BUCKETS)
        self.e2e = hist("vllm:e2e_request_latency_seconds", "Request latency", _E2E_BUCKETS)
        self.model_name = model_name

    # ---- events -------------------------------------------------------------------------
    def on_scheduler_stats(self, stats: dict[str, float]) -> None:
        if not stats:
            return
        self.running.set(stats.get("num_running", 0))
        self.waiting.set(stats.get("num_waiting", 0))
        self.kv_usage.set(100.0 * stats.get("kv_cache_usage", 0.0))
        total = stats.get("num_blocks", 0)
        self.kv_total.set(total)
        # free blocks include cached-but-unreferenced ones: they are reusable, not held
        self.kv_blocks.set(max(0.0, total - stats.get("num_free_blocks", total)))
        queries, hits = stats.get("prefix_cache_queries", 0), stats.get("prefix_cache_hits", 0)
        self.prefix_queries.set(queries)
        self.prefix_hits.set(hits)
        self.hit_rate.set(hits / queries if queries else 0.0)
        self.preemptions.set(stats.get("num_preemptions", 0))

    def on_first_token(self, ttft_s: float) -> None:
        self.ttft.observe(ttft_s)

    def on_inter_token(self, gap_s: float, num_tokens: int) -> None:
        per_token = gap_s / max(1, num_tokens)
        for _ in range(num_tokens):
            self.itl.observe(per_token)

    def on_generation_tokens(self, n: int) -> None:
        self.generation_tokens.inc(n)

    def on_request_finished(self, e2e_s: float, prompt_tokens: int, reasons: list[str]) -> None:
        self.e2e.observe(e2e_s)
        self.prompt_tokens.inc(prompt_tokens)
        for reason in reasons:
            self.success.labels(self.model_name, reason).inc()

    def on_request_aborted(self) -> None:
        self.aborted.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
