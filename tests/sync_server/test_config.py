from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from sync_server.core.config import Settings


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CONSULTA_SECRET_KEY must be set"):
        Settings(env="production", data_dir=tmp_path, database_url="postgresql://db/x")


def test_production_refuses_a_short_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", data_dir=tmp_path, database_url="postgresql://db/x",
                 secret_key="short")  # type: ignore[arg-type]


def test_production_refuses_the_embedded_database(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL must be set"):
        Settings(env="production", data_dir=tmp_path, secret_key="s" * 40)  # type: ignore[arg-type]


def test_development_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    first = Settings(env="development", data_dir=tmp_path).signing_key()
    second = Settings(env="development", data_dir=tmp_path).signing_key()
    assert first == second
    assert len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_secret_key_is_not_shown_in_settings_repr(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="x" * 40)  # type: ignore[arg-type]
    assert "x" * 40 not in repr(settings)
