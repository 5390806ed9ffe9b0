"""Methods to compare: small declarative specs (how the policy starts, from which demonstrations,
which PPO settings), so that a variant is a few lines of YAML, not code."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from sb3_llmae.training.config import BCConfig
from sb3_llmae.training.ppo import INIT_MODES, InitMode
from sb3_llmae.zoo import hyperparams_path

# How a method's policy starts: an init of ``make_ppo`` / ``llm_init_ppo``, or a transferred policy.
MethodInit = InitMode | Literal["transfer"]
METHOD_INITS: tuple[str, ...] = (*INIT_MODES, "transfer")
MethodAlgo = Literal["ppo", "maskable", "klppo"]
METHOD_ALGOS: tuple[str, ...] = ("ppo", "maskable", "klppo")
# The BC settings a method may give; a run orders its BC batches by its own seed.
BC_KWARGS: tuple[str, ...] = tuple(entry.name for entry in fields(BCConfig) if entry.name != "seed")
DEFAULT_SOURCE_ENV = "MiniGrid-Unlock-v0"
# The reference's transfer agent starts from a PPO trained 150k steps on Unlock.
DEFAULT_SOURCE_STEPS = 150_000


@dataclass(frozen=True)
class MethodSpec:
    """
    How one method builds its PPO model before training on the target env.

    :param name: the method's name (its folder and its label in the report)
    :param init: ``"scratch"``: fresh weights; ``"actor"`` / ``"full"``: BC on demonstrations through
        :func:`~sb3_llmae.training.llm_init.llm_init_ppo`, keeping the actor only or the whole network;
        ``"transfer"``: the policy of a PPO trained on ``source_env`` (trained once per seed, reused)
    :param algo: ``"ppo"`` (SB3's ``PPO``), ``"maskable"`` (sb3-contrib's ``MaskablePPO``, with the
        plugin's MiniGrid action masks) or ``"klppo"`` (the plugin's ``KLPPO``, whose ``ppo_kwargs`` may
        hold ``kl_coef``, ``kl_decay_steps``, ``critic_learning_rate``)
    :param demos: demonstrations directory of ``"actor"`` / ``"full"``; ``None``: the one the compare
        is given (``--demos``)
    :param source_env: env the ``"transfer"`` source model trains on
    :param source_steps: env steps of that source training
    :param ppo_kwargs: PPO settings over the reference ones (``learning_rate``, ``n_steps``, ...)
    :param bc: BC settings of ``"actor"`` / ``"full"`` (``bc_kwargs: {...}`` in a methods file); its
        ``seed`` is not used: a run orders its BC batches by the run's seed
    :param critic_warmup_steps: critic warm-up of ``"actor"`` / ``"full"``; ``None``: ``llm_init_ppo``'s
    :param n_envs: training envs of the method's runs; ``None``: its ``hyperparams`` file's, else the
        comparison's (``--n-envs``)
    :param hyperparams: a packaged rl-zoo3 hyperparameter file (``"ppo"``: ``hyperparams/ppo.yml``, PPO
        tuned from scratch) whose entry for the env (else its ``default``) gives the method's ``n_envs``
        and PPO settings, over the comparison's; ``ppo_kwargs`` and ``n_envs`` go over it
    """

    name: str
    init: MethodInit = "scratch"
    algo: MethodAlgo = "ppo"
    demos: str | None = None
    source_env: str = DEFAULT_SOURCE_ENV
    source_steps: int = DEFAULT_SOURCE_STEPS
    ppo_kwargs: Mapping[str, Any] = field(default_factory=dict)
    bc: BCConfig = field(default_factory=BCConfig)
    critic_warmup_steps: int | None = None
    n_envs: int | None = None
    hyperparams: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(
                f"Method name {self.name!r} must be a plain folder name (no '/', no leading '.')."
            )
        if self.init not in METHOD_INITS:
            raise ValueError(
                f"Method {self.name!r}: unknown init {self.init!r}; choose one of {', '.join(METHOD_INITS)}."
            )
        if self.algo not in METHOD_ALGOS:
            raise ValueError(
                f"Method {self.name!r}: unknown algo {self.algo!r}; choose one of {', '.join(METHOD_ALGOS)}."
            )
        if not isinstance(self.bc, BCConfig):
            raise ValueError(
                f"Method {self.name!r}: bc must be a BCConfig, got {self.bc!r} "
                "(MethodSpec.from_dict reads a bc_kwargs mapping)."
            )
        if self.bc.seed != BCConfig().seed:
            raise ValueError(
                f"Method {self.name!r}: a run orders its BC batches by its own seed; leave BCConfig.seed "
                "at its default and choose the runs' seeds instead."
            )
        if self.source_steps <= 0:
            raise ValueError(f"Method {self.name!r}: source_steps must be positive, got {self.source_steps}.")
        if self.critic_warmup_steps is not None and self.critic_warmup_steps < 0:
            raise ValueError(f"Method {self.name!r}: critic_warmup_steps must be >= 0.")
        if self.n_envs is not None and self.n_envs <= 0:
            raise ValueError(f"Method {self.name!r}: n_envs must be positive, got {self.n_envs}.")
        if self.hyperparams is not None:
            hyperparams_path(self.hyperparams)  # an unknown file is an error naming those shipped

    @property
    def needs_demos(self) -> bool:
        """:return: whether the method behaviour-clones demonstrations"""
        return self.init in ("actor", "full")

    def to_dict(self) -> dict[str, Any]:
        """:return: the spec as plain data (for a run's ``config.json``)"""
        data = asdict(self)
        del data["bc"]
        data["ppo_kwargs"] = dict(self.ppo_kwargs)
        data["bc_kwargs"] = bc_kwargs_of(self.bc)
        # unset, they are left out: run folders written before they existed still match
        for name in ("n_envs", "hyperparams"):
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MethodSpec:
        """
        :param data: a spec as plain data (a YAML entry, or what :meth:`to_dict` gave), its BC settings
            under ``bc_kwargs``
        :return: the spec
        :raises ValueError: naming unknown keys
        """
        known = {spec_field.name for spec_field in fields(cls) if spec_field.name != "bc"} | {"bc_kwargs"}
        name = data.get("name", "?")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Method {name!r}: unknown keys {', '.join(unknown)}; "
                f"a method has: {', '.join(sorted(known))}."
            )
        settings = dict(data)
        bc_kwargs = settings.pop("bc_kwargs", None) or {}
        return cls(**settings, bc=bc_config(bc_kwargs, f"Method {name!r}"))


def bc_config(bc_kwargs: Mapping[str, Any], owner: str = "bc_kwargs") -> BCConfig:
    """
    :param bc_kwargs: BC settings by name (``BC_KWARGS``), e.g. ``{"learning_rate": 0.001}``
    :param owner: who gives them, for the error message
    :return: those settings over ``BCConfig``'s defaults
    :raises ValueError: naming the keys that are not BC settings, and the valid ones
    """
    if not isinstance(bc_kwargs, Mapping):
        raise ValueError(
            f"{owner}: bc_kwargs must be a mapping such as {{learning_rate: 0.001}}, got {bc_kwargs!r}."
        )
    unknown = sorted(set(bc_kwargs) - set(BC_KWARGS))
    if unknown:
        hint = " (a run orders its BC batches by its own seed: pass --seeds)" if "seed" in unknown else ""
        raise ValueError(
            f"{owner}: unknown bc_kwargs {', '.join(unknown)}{hint}; BC settings are: {', '.join(BC_KWARGS)}."
        )
    return BCConfig(**bc_kwargs)


def bc_kwargs_of(bc: BCConfig) -> dict[str, Any]:
    """:return: ``bc`` as the ``bc_kwargs`` of a methods file (every setting but the seed)"""
    return {name: getattr(bc, name) for name in BC_KWARGS}


BUILTIN_METHODS: MappingProxyType[str, MethodSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            MethodSpec("scratch"),
            # PPO from scratch with its own tuned settings (hyperparams/ppo.yml: 16 envs, lr 1e-3, ...),
            # not the fine-tuning ones the LLM-initialised methods share
            MethodSpec("scratch-tuned", hyperparams="ppo"),
            MethodSpec("llmae", init="actor"),
            MethodSpec("llmae-full", init="full"),
            MethodSpec("transfer", init="transfer"),
            MethodSpec("maskable", algo="maskable"),
            MethodSpec("llmae-maskable", init="actor", algo="maskable"),
        )
    }
)


# Keys of an rl-zoo3 entry that are not PPO keyword arguments, or that a comparison sets itself.
ZOO_ONLY_KEYS = frozenset(
    {
        "env_wrapper",
        "normalize",
        "n_envs",
        "n_timesteps",
        "policy",
        "policy_kwargs",
        "callback",
        "monitor_kwargs",
        "frame_stack",
        "vec_env_wrapper",
        "env_kwargs",
        "eval_env_kwargs",
        "normalize_kwargs",
    }
)


def zoo_ppo_settings(name: str, env_id: str) -> tuple[int | None, dict[str, Any]]:
    """
    :param name: a packaged rl-zoo3 hyperparameter file (``sb3_llmae.zoo.hyperparams_names()``)
    :param env_id: the env whose entry is read (else the file's ``default`` entry)
    :return: the entry's ``n_envs`` (``None`` if it has none) and its PPO settings (``learning_rate``,
        ``n_steps``, ...): everything but rl-zoo3's own keys (wrappers, callbacks, ``n_timesteps``) and
        the policy layout, which is ``default_policy_kwargs()`` in both
    :raises ValueError: for an entry the plugin cannot pass to PPO (an rl-zoo3 schedule string)
    """
    path = hyperparams_path(name)
    entries = yaml.safe_load(path.read_text())
    entry = entries.get(env_id, entries.get("default"))
    if not isinstance(entry, dict):
        raise ValueError(f"{path} has no entry for {env_id} and no 'default' entry.")
    settings = {key: value for key, value in entry.items() if key not in ZOO_ONLY_KEYS}
    schedules = sorted(key for key, value in settings.items() if isinstance(value, str))
    if schedules:
        raise ValueError(
            f"{path}: {', '.join(schedules)} of {env_id} are rl-zoo3 strings (schedules) the compare runner "
            "does not read; give the method those settings as numbers in ppo_kwargs."
        )
    n_envs = entry.get("n_envs")
    return (None if n_envs is None else int(n_envs)), settings


def load_method_specs(path: str | os.PathLike[str]) -> dict[str, MethodSpec]:
    """
    Read method specs from a YAML (or JSON) file: a mapping from name to settings, e.g.::

        llmae-noisy:
          init: actor
          demos: demos/noisy
          bc_kwargs: {learning_rate: 0.001}   # BCConfig fields

    :param path: the file
    :return: the specs by name
    :raises ValueError: if it is not such a mapping
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(value, dict) for value in data.values()):
        raise ValueError(
            f"{path} must map method names to their settings, e.g. 'llmae-full: {{init: full}}'."
        )
    return {
        str(name): MethodSpec.from_dict({**settings, "name": str(name)}) for name, settings in data.items()
    }


def resolve_methods(
    names: Iterable[str], extra_specs: Mapping[str, MethodSpec] | None = None
) -> list[MethodSpec]:
    """
    :param names: method names, built-in (``BUILTIN_METHODS``) or in ``extra_specs``
    :param extra_specs: user specs, which take precedence over built-in ones of the same name
    :return: the specs, in the order of ``names``
    :raises ValueError: for an unknown or repeated name
    """
    available = {**BUILTIN_METHODS, **(extra_specs or {})}
    names = list(names)
    if not names:
        raise ValueError(f"No method given: choose from {', '.join(available)}.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Methods repeated: {', '.join(repeated)}.")
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(
            f"Unknown methods {', '.join(unknown)}: choose from {', '.join(available)}, "
            "or define them in a methods file (--methods-file)."
        )
    return [available[name] for name in names]
