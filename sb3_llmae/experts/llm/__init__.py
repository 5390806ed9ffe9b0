"""The LLM expert: observation text, prompts, reply parsing, the chat client and its response cache."""

from sb3_llmae.experts.llm.cache import ResponseCache
from sb3_llmae.experts.llm.client import ChatClient, ChatSettings, LLMEndpointError, LLMRequestError
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.prompts import PLAN_TEMPLATE, STEP_TEMPLATE, PromptTemplate

__all__ = [
    "PLAN_TEMPLATE",
    "STEP_TEMPLATE",
    "ChatClient",
    "ChatSettings",
    "LLMEndpointError",
    "LLMExpert",
    "LLMRequestError",
    "PromptTemplate",
    "ResponseCache",
]
