"""infra.config loads its names on first use (PEP 562): each one resolves to its module's."""

from __future__ import annotations

import importlib

import infra.config as config


def test_every_name_resolves_to_the_module_that_defines_it():
    for name in config.__all__:
        module = importlib.import_module(f"infra.config.{config._MODULE_OF[name]}")
        assert getattr(config, name) is getattr(module, name), name
    assert sorted(config.__all__) == sorted(config._MODULE_OF)  # the two lists name the same
