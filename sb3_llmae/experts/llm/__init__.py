"""The LLM expert: observation text, prompts, reply parsing, the chat client, its response cache and rate
limiter, cost estimates and the Batch API."""

from sb3_llmae.experts.llm.batch import BatchSettings, LLMBatchError, fill_cache_by_batches
from sb3_llmae.experts.llm.cache import ResponseCache
from sb3_llmae.experts.llm.client import ChatClient, ChatSettings, LLMEndpointError, LLMRequestError
from sb3_llmae.experts.llm.cost import CostEstimate, TokenPrices, estimate_generation_cost
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.prompts import PLAN_TEMPLATE, STEP_TEMPLATE, PromptTemplate
from sb3_llmae.experts.llm.rate_limit import RateLimiter

__all__ = [
    "PLAN_TEMPLATE",
    "STEP_TEMPLATE",
    "BatchSettings",
    "ChatClient",
    "ChatSettings",
    "CostEstimate",
    "LLMBatchError",
    "LLMEndpointError",
    "LLMExpert",
    "LLMRequestError",
    "PromptTemplate",
    "RateLimiter",
    "ResponseCache",
    "TokenPrices",
    "estimate_generation_cost",
    "fill_cache_by_batches",
]
