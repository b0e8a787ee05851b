"""Your own environments by name: a factory "package.module:function" (config `env.factory`).

A factory is found like an entry point: the module is imported (the working directory is
importable, as for `python -m`), and the function is called to make the environments:

- a *host* factory takes `num_envs` and returns N environments stepped from Python:

      def make(num_envs: int, seed: int, training: bool, **options) -> gymnasium.vector.VectorEnv

  (or a `gtrxl_jax.envs.VectorEnv`; a gymnasium one is wrapped by `GymnasiumVectorEnv`);
- a *JAX* factory takes no `num_envs` and returns one `gtrxl_jax.envs.JaxEnv`, which the
  on-device loop vmaps over env.num_envs environments:

      def make(**options) -> JaxEnv

`options` are the config's env.options. experiments/custom_env.py has one of each.
"""

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import gymnasium

from gtrxl_jax.config import FACTORY_FORM
from gtrxl_jax.envs.base import VectorEnv
from gtrxl_jax.envs.functional import JaxEnv
from gtrxl_jax.envs.gymnasium_env import GymnasiumVectorEnv


def is_factory(task: str) -> bool:
    """Tell whether a task name is a factory's "package.module:function"."""
    return FACTORY_FORM.fullmatch(task) is not None


def load_factory(name: str) -> Callable[..., Any]:
    """Import the function a factory name points to.

    Raises:
      ValueError: the module cannot be imported or has no such function.
    """
    module_name, function_name = name.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"factory {name}: cannot import {module_name} ({error}); the module "
                         "must be installed or under the working directory") from error
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise ValueError(f"factory {name}: {module_name} has no function {function_name}")
    return factory


def makes_host_envs(name: str) -> bool:
    """Tell whether a factory makes host environments (it takes num_envs) or a JaxEnv."""
    return _takes_num_envs(load_factory(name))


def _takes_num_envs(factory: Callable[..., Any]) -> bool:
    return "num_envs" in inspect.signature(factory).parameters


def make_host_envs(name: str, num_envs: int, seed: int, training: bool,
                   options: dict[str, Any]) -> VectorEnv:
    """Call a host factory and give its environments the `VectorEnv` interface.

    Raises:
      ValueError: the factory is a JAX one, or returned something else than a gymnasium or
        gtrxl_jax vector environment of num_envs environments.
    """
    factory = load_factory(name)
    if not _takes_num_envs(factory):
        raise ValueError(f"factory {name} takes no num_envs, so it makes a JaxEnv: train it "
                         "with learner.loop=on_device (or auto)")
    made = factory(num_envs=num_envs, seed=seed, training=training, **options)
    if isinstance(made, gymnasium.vector.VectorEnv):
        made = GymnasiumVectorEnv(made, task=name, seed=seed)
    if not isinstance(made, VectorEnv):
        raise ValueError(f"factory {name} returned a {type(made).__name__}; a host factory "
                         "returns a gymnasium.vector.VectorEnv or a gtrxl_jax VectorEnv")
    if made.spec.num_envs != num_envs:
        raise ValueError(f"factory {name} made {made.spec.num_envs} environments where "
                         f"num_envs={num_envs} were asked for")
    return made


def make_jax_envs(name: str, options: dict[str, Any]) -> JaxEnv:
    """Call a JAX factory.

    Raises:
      ValueError: the factory is a host one, or did not return a JaxEnv.
    """
    factory = load_factory(name)
    if _takes_num_envs(factory):
        raise ValueError(f"factory {name} takes num_envs, so it makes host environments: "
                         "train it with learner.loop=actor_learner (or auto)")
    made = factory(**options)
    if not isinstance(made, JaxEnv):
        raise ValueError(f"factory {name} returned a {type(made).__name__}; a factory without "
                         "num_envs returns a gtrxl_jax.envs.JaxEnv")
    return made
