"""The baseline: what any user writes in ten lines (xAI's "parallelize requests" guide).

    .venv/bin/python bench/baseline_gather.py --base-url http://127.0.0.1:PORT/v1 -n 1000 -c 16

Prints one `RESULT {"wall": s, "cpu": s, "import_s": s, "answers": n}` line. `wall` covers
making the client, every request and closing the client; `import_s` is `import openai`, timed
apart because the plugin imports the SDK lazily, inside its "prefetch: X s wall".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import API_KEY, MODEL, prompt  # noqa: E402


# -- the ten lines ------------------------------------------------------------------------------
async def gather_all(base_url: str, prompts: list[str], concurrency: int) -> list[str | None]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def ask(text: str) -> str | None:
        async with semaphore:
            response = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": text}]
            )
            return response.choices[0].message.content

    async with client:
        return await asyncio.gather(*(ask(text) for text in prompts))


# -----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("-n", type=int, default=1000, help="requests (default 1000)")
    parser.add_argument("-c", type=int, default=16, help="concurrency (default 16)")
    args = parser.parse_args()
    prompts = [prompt(n) for n in range(args.n)]
    started = time.perf_counter()
    import openai  # noqa: F401

    import_s = time.perf_counter() - started
    cpu, started = time.process_time(), time.perf_counter()
    answers = asyncio.run(gather_all(args.base_url, prompts, args.c))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert all(answers), "an answer was empty"
    result = {"wall": wall, "cpu": cpu, "import_s": import_s, "answers": len(answers)}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
