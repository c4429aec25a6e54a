"""LLM summaries for what is about to be posted, when an endpoint is configured.

Only the stories of a digest or an alert are summarised (not every stored item), so a
local model keeps up. Any failure keeps the extractive summary already stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot.llm import LLMSummariser, summariser_from_env
from bot.stories import RankedStory

CONCURRENCY = 4


def with_llm_summaries(stories: list[RankedStory]) -> list[RankedStory]:
    """The same stories, with LLM summaries where the endpoint answered. Runs in a worker
    thread (digests and alerts are built off the event loop)."""
    summariser = summariser_from_env()
    if not stories or not isinstance(summariser, LLMSummariser):
        return stories
    return asyncio.run(_summarise(summariser, stories))


async def _summarise(llm: LLMSummariser, stories: list[RankedStory]) -> list[RankedStory]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(ranked: RankedStory) -> RankedStory:
        async with gate:
            summary = await llm.summarise(ranked.story.title, ranked.text or ranked.story.summary)
        if not summary:
            return ranked
        return replace(ranked, story=ranked.story.model_copy(update={"summary": summary}))

    async with llm:
        return list(await asyncio.gather(*(one(r) for r in stories)))
