"""Fixtures for the model tests: the real catalog, and no network."""

from __future__ import annotations

import os

import pytest

from studio.models import load_catalog

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach the hub


@pytest.fixture
def catalog():
    return load_catalog()
