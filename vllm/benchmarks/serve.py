"""`vllm bench serve`: an asyncio streaming client that measures an OpenAI-compatible server
(ours or any other): request throughput, output tok/s, TTFT, TPOT and ITL.

Prompts are random English words; when the server has ``/tokenize`` (ours and vLLM's do) they
are cut to exactly ``--input-len`` tokens and sent as token ids, so every server sees the same
input. Requests ask for ``--output-len`` tokens with ``ignore_eos`` (servers that don't know
the field stop at EOS; the report counts the tokens really received).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import click

_WORDS = ("time year people way day man thing woman life child world school state family "
          "student group country problem hand part place case week company system program "
          "question work government number night point home water room mother area money story "
          "fact month lot right study book eye job word business issue side kind head house "
          "service friend father power hour game line end member law car city community name").split()


@dataclass
class RequestResult:
    ok: bool = False
    error: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0
    ttft: float = 0.0
    latency: float = 0.0
    itl: list[float] = field(default_factory=list)


def _percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "p99": 0.0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"mean": statistics.fmean(values) * scale, "median": statistics.median(values) * scale,
            "p99": p99 * scale}


async def _make_prompts(session: Any, base: str, model: str, n: int, input_len: int,
                        rng: random.Random) -> list[str | list[int]]:
    texts = [" ".join(rng.choice(_WORDS) for _ in range(input_len + 8)) for _ in range(n)]
    prompts: list[str | list[int]] = []
    for text in texts:
        try:
            async with session.post(f"{base}/tokenize", json={"model": model, "prompt": text,
                                                              "add_special_tokens": False}) as r:
                if r.status != 200:
                    return list(texts)
                ids = (await r.json())["tokens"]
        except Exception:  # noqa: BLE001 - the server has no /tokenize: send the text
            return list(texts)
        prompts.append(ids[:input_len])
    return prompts


async def _one_request(session: Any, url: str, payload: dict[str, Any]) -> RequestResult:
    res = RequestResult()
    start = time.perf_counter()
    last = start
    try:
        async with session.post(url, json=payload) as resp:
            if resp.status != 200:
                res.error = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                return res
            chunks = 0
            async for raw in resp.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                body = json.loads(data)
                if body.get("error"):
                    res.error = str(body["error"].get("message", body["error"]))[:200]
                    return res
                if body.get("usage"):
                    res.prompt_tokens = body["usage"].get("prompt_tokens", 0)
                    res.output_tokens = body["usage"].get("completion_tokens", 0)
                if body.get("choices"):  # text may be empty (e.g. special tokens)
                    now = time.perf_counter()
                    if chunks == 0:
                        res.ttft = now - start
                    else:
                        res.itl.append(now - last)
                    last = now
                    chunks += 1
            res.latency = time.perf_counter() - start
            res.output_tokens = res.output_tokens or chunks
            res.ok = True
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        res.error = f"{type(exc).__name__}: {exc}"
    return res


def _summary(results: list[RequestResult], duration: float) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    out_tokens = sum(r.output_tokens for r in ok)
    tpot = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    return {
        "completed": len(ok), "failed": len(results) - len(ok),
        "errors": sorted({r.error for r in results if not r.ok})[:5],
        "duration_s": duration,
        "total_input_tokens": sum(r.prompt_tokens for r in ok),
        "total_output_tokens": out_tokens,
        "request_throughput": len(ok) / duration if duration else 0.0,
        "output_throughput": out_tokens / duration if duration else 0.0,
        "ttft_ms": _percentiles([r.ttft for r in ok]),
        "tpot_ms": _percentiles(tpot),
        "itl_ms": _percentiles([x for r in ok for x in r.itl]),
        "e2e_ms": _percentiles([r.latency for r in ok]),
    }


async def run_benchmark(base_url: str, model: str | None, num_prompts: int, input_len: int,
                        output_len: int, request_rate: float, max_concurrency: int | None,
                        seed: int, api_key: str | None) -> dict[str, Any]:
    import aiohttp

    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = aiohttp.ClientTimeout(total=6 * 3600)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout,
                                     connector=connector) as session:
        if not model:
            async with session.get(f"{base_url}/v1/models") as r:
                model = (await r.json())["data"][0]["id"]
        prompts = await _make_prompts(session, base_url, model, num_prompts, input_len, rng)
        gate = asyncio.Semaphore(max_concurrency) if max_concurrency else None

        async def fire(prompt: str | list[int]) -> RequestResult:
            payload = {"model": model, "prompt": prompt, "max_tokens": output_len,
                       "temperature": 0.0, "ignore_eos": True, "stream": True,
                       "stream_options": {"include_usage": True}}
            if gate is None:
                return await _one_request(session, f"{base_url}/v1/completions", payload)
            async with gate:
                return await _one_request(session, f"{base_url}/v1/completions", payload)

        tasks = []
        start = time.perf_counter()
        for prompt in prompts:
            tasks.append(asyncio.create_task(fire(prompt)))
            if request_rate != float("inf"):
                await asyncio.sleep(rng.expovariate(request_rate))
        results = await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
    summary = _summary(list(results), duration)
    summary.update(model=model, base_url=base_url, num_prompts=num_prompts, input_len=input_len,
                   output_len=output_len, request_rate=request_rate,
                   max_concurrency=max_concurrency)
    summary["first_result"] = asdict(results[0]) if results else None
    return summary


def _print(summary: dict[str, Any]) -> None:
    click.echo("=" * 16 + " Serving benchmark " + "=" * 16)
    click.echo(f"{'Successful requests':<34}{summary['completed']}")
    click.echo(f"{'Failed requests':<34}{summary['failed']}")
    for err in summary["errors"]:
        click.echo(f"  error: {err}")
    click.echo(f"{'Duration (s)':<34}{summary['duration_s']:.2f}")
    click.echo(f"{'Total input tokens':<34}{summary['total_input_tokens']}")
    click.echo(f"{'Total output tokens':<34}{summary['total_output_tokens']}")
    click.echo(f"{'Request throughput (req/s)':<34}{summary['request_throughput']:.2f}")
    click.echo(f"{'Output throughput (tok/s)':<34}{summary['output_throughput']:.2f}")
    for key, label in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms", "ITL"),
                       ("e2e_ms", "E2E latency")):
        s = summary[key]
        click.echo(f"{label + ' (ms) mean/median/p99':<34}"
                   f"{s['mean']:.2f} / {s['median']:.2f} / {s['p99']:.2f}")


@click.command("serve")
@click.option("--base-url", default=None, help="server URL (default: http://HOST:PORT)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--model", default=None, help="model name (default: the server's first model)")
@click.option("--num-prompts", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--input-len", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--output-len", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--request-rate", default="inf", show_default=True,
              help="requests/s (Poisson arrivals) or 'inf' to send all at once")
@click.option("--max-concurrency", default=None, type=click.IntRange(min=1),
              help="most requests in flight at once")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--api-key", default=None, envvar="OPENAI_API_KEY")
@click.option("--output-json", default=None, type=click.Path(dir_okay=False),
              help="write the results to this JSON file")
def serve_cmd(base_url: str | None, host: str, port: int, model: str | None, num_prompts: int,
              input_len: int, output_len: int, request_rate: str, max_concurrency: int | None,
              seed: int, api_key: str | None, output_json: str | None) -> None:
    """Benchmark a running OpenAI-compatible server with streaming completions."""
    try:
        rate = float(request_rate)
    except ValueError:
        raise click.BadParameter(f"must be a number or 'inf', got {request_rate!r}",
                                 param_hint="--request-rate") from None
    if rate <= 0:
        raise click.BadParameter(f"must be > 0, got {rate}", param_hint="--request-rate")
    base = (base_url or f"http://{host}:{port}").rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    summary = asyncio.run(run_benchmark(base, model, num_prompts, input_len, output_len, rate,
                                        max_concurrency, seed, api_key))
    _print(summary)
    if output_json:
        with open(output_json, "w") as f:
            json.dump(summary, f, indent=2)
    if summary["completed"] == 0:
        raise SystemExit(1)
