"""
The LLM expert: observation text, prompts, reply parsing, the chat client (settings, endpoint, transport
with retries and cancellation, usage), its response cache and rate limiter, cost estimates and the Batch API.
"""

from sb3_llmae.experts.llm.batch import BatchSettings, LLMBatchError, fill_cache_by_batches
from sb3_llmae.experts.llm.cache import ResponseCache
from sb3_llmae.experts.llm.client import ChatClient
from sb3_llmae.experts.llm.cost import CostEstimate, estimate_generation_cost
from sb3_llmae.experts.llm.errors import LLMEndpointError, LLMRequestCancelled, LLMRequestError
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.prices import TokenPrices
from sb3_llmae.experts.llm.prompts import PLAN_TEMPLATE, STEP_TEMPLATE, PromptTemplate
from sb3_llmae.experts.llm.rate_limit import RateLimiter
from sb3_llmae.experts.llm.settings import ChatSettings
from sb3_llmae.experts.llm.usage import ChatResult, UsageStats

__all__ = [
    "PLAN_TEMPLATE",
    "STEP_TEMPLATE",
    "BatchSettings",
    "ChatClient",
    "ChatResult",
    "ChatSettings",
    "CostEstimate",
    "LLMBatchError",
    "LLMEndpointError",
    "LLMExpert",
    "LLMRequestCancelled",
    "LLMRequestError",
    "PromptTemplate",
    "RateLimiter",
    "ResponseCache",
    "TokenPrices",
    "UsageStats",
    "estimate_generation_cost",
    "fill_cache_by_batches",
]
