"""Settings from ``TASKER_*`` variables as a table: each variable's default, the values
it accepts, and the bad values, which fail with an error naming the variable."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

from tasker.config import PoolerSettings, Settings
from tasker.exceptions import ConfigurationError

# Every Settings field, its variable and its default when the variable is unset.
DEFAULTS = {
    "database_url": ("TASKER_DATABASE_URL", "sqlite:///./tasker.db"),
    "templates": ("TASKER_TEMPLATES", ()),
    "lease_seconds": ("TASKER_LEASE_SECONDS", 30.0),
    "log_format": ("TASKER_LOG_FORMAT", "text"),
    "auth": ("TASKER_AUTH", False),
    "subscribers": ("TASKER_SUBSCRIBERS", ()),
    "max_result_bytes": ("TASKER_MAX_RESULT_BYTES", 1_048_576),
    "max_task_steps": ("TASKER_MAX_TASK_STEPS", 100_000),
    "pooler": ("TASKER_PGBOUNCER", PoolerSettings(pgbouncer=False, listen_url=None)),
}

# (variable, value) -> (field, parsed value)
GOOD = [
    ("TASKER_DATABASE_URL", "postgresql://u@db:5432/t", "database_url", "postgresql://u@db:5432/t"),
    ("TASKER_DATABASE_URL", "", "database_url", "sqlite:///./tasker.db"),  # empty: default
    ("TASKER_TEMPLATES", f"a{os.pathsep}b.yaml", "templates", ("a", "b.yaml")),
    ("TASKER_TEMPLATES", f"a{os.pathsep}{os.pathsep}", "templates", ("a",)),
    ("TASKER_LEASE_SECONDS", "10", "lease_seconds", 10.0),
    ("TASKER_LEASE_SECONDS", "0.5", "lease_seconds", 0.5),
    ("TASKER_LEASE_SECONDS", "", "lease_seconds", 30.0),
    ("TASKER_LOG_FORMAT", "json", "log_format", "json"),
    ("TASKER_LOG_FORMAT", "text", "log_format", "text"),
    ("TASKER_AUTH", "on", "auth", True),
    ("TASKER_AUTH", "ON", "auth", True),
    ("TASKER_AUTH", "true", "auth", True),
    ("TASKER_AUTH", "1", "auth", True),
    ("TASKER_AUTH", "yes", "auth", True),
    ("TASKER_AUTH", " off ", "auth", False),
    ("TASKER_AUTH", "false", "auth", False),
    ("TASKER_AUTH", "0", "auth", False),
    ("TASKER_AUTH", "no", "auth", False),
    (
        "TASKER_SUBSCRIBERS",
        "task.*=m:f, step.failed=m:g ,",
        "subscribers",
        ("task.*=m:f", "step.failed=m:g"),
    ),
    ("TASKER_MAX_RESULT_BYTES", "2048", "max_result_bytes", 2048),
    ("TASKER_MAX_TASK_STEPS", "500", "max_task_steps", 500),
    ("TASKER_PGBOUNCER", "on", "pooler", PoolerSettings(pgbouncer=True)),
    ("TASKER_PGBOUNCER", "off", "pooler", PoolerSettings(pgbouncer=False)),
    (
        "TASKER_LISTEN_URL",
        "postgresql://u@db/t",
        "pooler",
        PoolerSettings(listen_url="postgresql://u@db/t"),
    ),
]

# (variable, bad value): each must fail with a ConfigurationError naming the variable
BAD = [
    ("TASKER_MAX_TASK_STEPS", "many"),
    ("TASKER_MAX_TASK_STEPS", "0"),
    ("TASKER_LEASE_SECONDS", "soon"),
    ("TASKER_LEASE_SECONDS", "0"),
    ("TASKER_LEASE_SECONDS", "-5"),
    ("TASKER_LEASE_SECONDS", "nan"),
    ("TASKER_LEASE_SECONDS", "inf"),
    ("TASKER_MAX_RESULT_BYTES", "1.5"),
    ("TASKER_MAX_RESULT_BYTES", "1MB"),
    ("TASKER_MAX_RESULT_BYTES", "0"),
    ("TASKER_MAX_RESULT_BYTES", "-1"),
    ("TASKER_LOG_FORMAT", "xml"),
    ("TASKER_LOG_FORMAT", "JSON"),
    ("TASKER_AUTH", "maybe"),
    ("TASKER_AUTH", "enabled"),
    ("TASKER_PGBOUNCER", "sometimes"),
    ("TASKER_LISTEN_URL", "http://db:5432/t"),
]


def test_every_field_has_a_variable_and_a_default() -> None:
    # Adding a setting without a row here fails: its variable and default are untested
    assert set(DEFAULTS) == {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize(("field", "variable", "default"), [(f, *v) for f, v in DEFAULTS.items()])
def test_default_when_unset(field: str, variable: str, default: Any) -> None:
    # Given no TASKER_* variable at all; Then each field has its documented default
    settings = Settings.from_env({})
    assert getattr(settings, field) == default
    assert f"``{variable}``" in (Settings.__doc__ or "")  # and the docstring names it


@pytest.mark.parametrize(("variable", "value", "field", "expected"), GOOD)
def test_a_good_value_is_parsed(variable: str, value: str, field: str, expected: Any) -> None:
    assert getattr(Settings.from_env({variable: value}), field) == expected


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_a_bad_value_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


def test_an_option_overrides_the_variable_and_none_does_not() -> None:
    # Given TASKER_LEASE_SECONDS=10; When a command line option gives 5, or nothing
    env = {"TASKER_LEASE_SECONDS": "10", "TASKER_DATABASE_URL": "sqlite:///env.db"}
    settings = Settings.from_env(env, lease_seconds=5.0, database_url=None)
    # Then the option wins, and an option not given leaves the variable's value
    assert (settings.lease_seconds, settings.database_url) == (5.0, "sqlite:///env.db")


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().lease_seconds = 1.0  # type: ignore[misc]


def test_the_pooler_mode_comes_from_the_given_environment_not_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a process whose own environment says PgBouncer, and settings read from another
    monkeypatch.setenv("TASKER_PGBOUNCER", "on")
    # Then the given environment decides, as it does for the URL the pooler sits in front of
    assert Settings.from_env({}).pooler == PoolerSettings(pgbouncer=False)
    assert Settings.from_env({"TASKER_PGBOUNCER": "on"}).pooler == PoolerSettings(pgbouncer=True)
    # And settings made by hand leave it to the process's environment, as before
    assert Settings().pooler is None
