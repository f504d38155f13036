"""FP8 training for the torch backend through torchao float8 (no Transformer Engine needed).

Every ``nn.Linear`` except the output head becomes a torchao ``Float8Linear`` (tensorwise or rowwise
scaling). FP8 needs a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper, Blackwell) and
matrix dimensions divisible by 16; anything else is a clear error, never a silent bf16 run.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.errors import ConfigError

RECIPES = ("tensorwise", "rowwise")
HEAD = "output"


def check_fp8_dims(model: nn.Module) -> None:
    """Raise naming the first Linear (head excepted) whose dimensions are not multiples of 16."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != HEAD]
    for name, module in linears:
        if module.in_features % 16 or module.out_features % 16:
            raise ConfigError(
                f"fp8: layer {name} is {module.in_features} -> {module.out_features}; FP8 "
                "matmuls need both divisible by 16: pick d_model, d_ff and heads x head_dim "
                "that are (e.g. model.d_ff_multiple=16), or train without fp8"
            )


def check_fp8_device(device: torch.device) -> None:
    """Raise unless ``device`` is a CUDA GPU with FP8 tensor cores (sm_89 or newer)."""
    if device.type != "cuda":
        raise ConfigError(
            f"fp8=torchao needs a CUDA GPU of compute capability >= 8.9; this run is on "
            f"{device.type}: drop fp8 (fp8=none) for CPU runs"
        )
    capability = torch.cuda.get_device_capability(device)
    if capability < (8, 9):
        raise ConfigError(
            f"fp8=torchao needs compute capability >= 8.9 (Ada/Hopper); "
            f"{torch.cuda.get_device_name(device)} is sm_{capability[0]}{capability[1]}: "
            "use fp8=none"
        )


def convert_to_fp8(model: nn.Module, recipe: str, device: torch.device) -> nn.Module:
    """Swap the model's Linears (not the head) for torchao float8 training Linears, in place.

    Args:
        recipe: ``tensorwise`` or ``rowwise`` scaling.
    """
    if recipe not in RECIPES:
        raise ConfigError(f"backend.fp8_recipe={recipe!r} for torchao: use one of {RECIPES}")
    check_fp8_device(device)
    check_fp8_dims(model)
    try:
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    except ImportError as e:
        raise ConfigError("fp8=torchao needs torchao: pip install 'archsearch[fp8]'") from e
    config = Float8LinearConfig.from_recipe_name(recipe)
    return convert_to_float8_training(
        model, config=config, module_filter_fn=lambda _module, fqn: fqn != HEAD
    )
