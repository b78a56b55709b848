"""Durations and secret sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from npsp_common.types import SecretSource, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1.5s", 1.5),
        (" 1m 30s ", 90),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["", "5", "5x", "m5", "-5s", "0s", "1h-2m", 5, 2.5, True, None, [1]]
)
def test_bad_durations_are_refused_with_a_hint(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(bad)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_and_parse_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_secret_from_file_env_and_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("s3cr3t-file\n")
    assert SecretSource(file=tmp_path / "token").read().get_secret_value() == "s3cr3t-file"
    monkeypatch.setenv("NPSP_TEST_TOKEN", "s3cr3t-env")
    assert SecretSource(env="NPSP_TEST_TOKEN").read().get_secret_value() == "s3cr3t-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "twilio-token").write_text("s3cr3t-cred")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    secret = SecretSource(file=Path("twilio-token")).read()
    assert secret.get_secret_value() == "s3cr3t-cred"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret)


def test_secret_errors_name_the_source_never_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NPSP_MISSING", raising=False)
    with pytest.raises(ValueError, match="environment variable NPSP_MISSING is not set"):
        SecretSource(env="NPSP_MISSING").read()
    with pytest.raises(ValueError, match="cannot read secret file"):
        SecretSource(file=tmp_path / "absent").read()
    with pytest.raises(ValidationError, match="exactly one of file or env"):
        SecretSource(file=tmp_path / "x", env="Y")
    with pytest.raises(ValidationError, match="exactly one of file or env"):
        SecretSource()
