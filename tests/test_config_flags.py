"""Command-line flags built from settings dataclasses."""

import argparse
from dataclasses import dataclass

import pytest

from sb3_llmae.cli import build_parser
from sb3_llmae.cli.config_flags import DefaultsHelpFormatter, add_config_flags, config_from_args, field_help
from sb3_llmae.training.config import BCConfig, EvalConfig


@dataclass(frozen=True)
class Settings:
    """
    Some settings.

    :param steps: how many steps, a help text
        written over two lines
    :param rate: a rate (``None``: none)
    :param name: a name
    """

    steps: int = 3
    rate: float | None = None
    name: str = "x"


FLAGS = {"steps": "--n-steps", "rate": "--rate", "name": "--name"}


def parser_of() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    add_config_flags(parser, Settings, FLAGS)
    return parser


def test_the_help_shows_each_fields_docstring_and_default():
    shown = " ".join(parser_of().format_help().split())
    assert "--n-steps N_STEPS how many steps, a help text written over two lines (default: 3)" in shown
    assert "--rate RATE a rate ('None': none) (default: None)" in shown
    assert field_help(Settings)["name"] == "a name"


def test_values_round_trip_through_the_flags():
    parser = parser_of()
    assert config_from_args(parser.parse_args([]), Settings, FLAGS) == Settings()
    args = parser.parse_args(["--n-steps", "7", "--rate", "0.5", "--name", "y"])
    assert config_from_args(args, Settings, FLAGS) == Settings(steps=7, rate=0.5, name="y")
    assert config_from_args(parser.parse_args(["--rate", "none"]), Settings, FLAGS).rate is None
    assert config_from_args(parser.parse_args([]), Settings, FLAGS, steps=9).steps == 9


def test_unknown_fields_and_types_are_refused():
    with pytest.raises(TypeError, match="has no field 'nope'"):
        add_config_flags(argparse.ArgumentParser(), Settings, {"nope": "--nope"})

    @dataclass
    class Odd:
        """:param items: a list"""

        items: list[int] | None = None

    with pytest.raises(TypeError, match=r"No command-line parser for Odd\.items"):
        add_config_flags(argparse.ArgumentParser(), Odd, {"items": "--items"})


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        (
            "pretrain",
            {
                "--bc-epochs": BCConfig.epochs,
                "--bc-learning-rate": BCConfig.learning_rate,
                "--bc-batch-size": BCConfig.batch_size,
                "--warmup-steps": 2048,
                "--kl-coef": 0.0,
                "--n-envs": 4,
            },
        ),
        ("train", {"--eval-episodes": EvalConfig.n_episodes, "--eval-seed": EvalConfig.seed, "--seed": 0}),
        ("record", {"--episodes": 3, "--seed": 0, "--fps": 8}),
    ],
)
def test_every_subcommand_help_shows_the_defaults(command, defaults):
    subparsers = next(
        action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    options = " ".join(subparsers.choices[command].format_help().split()).split("options:")[1]
    for flag, default in defaults.items():
        own_help = options.split(f"{flag} {flag.lstrip('-').replace('-', '_').upper()}")[1].split(" --")[0]
        assert own_help.endswith(f"(default: {default})")
