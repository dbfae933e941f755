"""Which Google Cloud project spans go to, found without touching the network.

In order: the ``project_id`` option; ``GOOGLE_CLOUD_PROJECT`` (or the older ``GCLOUD_PROJECT``);
the credentials object passed in; then Application Default Credentials as far as they are files:
the key file ``GOOGLE_APPLICATION_CREDENTIALS`` names, and the gcloud configuration (the one
``CLOUDSDK_ACTIVE_CONFIG_NAME`` names, else the active one, as gcloud picks). Asking the
metadata server (what ``google.auth.default()`` does last) costs a network round trip and, off
Google Cloud, seconds of retries at start-up: on Compute Engine, GKE or Cloud Run, set
``GOOGLE_CLOUD_PROJECT`` or pass ``project_id``.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from typing import Any, Optional, Tuple

from tracing_api import ConfigurationError

# A project id (6-30 of [a-z0-9-]), optionally behind a domain ("example.com:my-project"). Kept
# loose on purpose: the backend is the judge; this catches typos that would make bad names.
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_\-]*\Z")

# gcloud's own rule for configuration names.
_CONFIG_NAME = re.compile(r"[a-z][-a-z0-9]*\Z")

MISSING = (
    "exporter 'stackdriver': no Google Cloud project id; pass project_id=..., set "
    "GOOGLE_CLOUD_PROJECT, or use credentials that name a project "
    "(a service account key in GOOGLE_APPLICATION_CREDENTIALS, or gcloud config set project)"
)


def check(value: object, source: str) -> str:
    """``value`` if it is a well-formed project id; ``ConfigurationError`` naming ``source``."""
    if not isinstance(value, str) or not _PROJECT.match(value):
        raise ConfigurationError(
            f"exporter 'stackdriver': {source}: expected a Google Cloud project id such as "
            f"'my-project', got {value!r}"
        )
    return value


def _from_key_file(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
    except (OSError, ValueError):
        return None
    project = info.get("project_id") if isinstance(info, dict) else None
    return project if isinstance(project, str) and project else None


def _gcloud_directory() -> str:
    configured = os.environ.get("CLOUDSDK_CONFIG")
    if configured:
        return configured
    if os.name == "nt":
        return os.path.join(os.environ.get("APPDATA", ""), "gcloud")
    return os.path.join(os.path.expanduser("~"), ".config", "gcloud")


def _active_config(directory: str) -> Optional[str]:
    # As gcloud decides it: the variable first (set per shell or per deployment), then the file
    # `gcloud config configurations activate` writes. A name gcloud would refuse (one with a
    # path in it, say) names no configuration.
    named = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME", "").strip()
    if not named:
        try:
            with open(os.path.join(directory, "active_config"), encoding="utf-8") as file:
                named = file.read().strip() or "default"
        except (OSError, UnicodeDecodeError):
            named = "default"
    return named if _CONFIG_NAME.match(named) else None


def _from_gcloud() -> Optional[str]:
    directory = _gcloud_directory()
    project = _from_key_file(os.path.join(directory, "application_default_credentials.json"))
    if project:
        return project
    env_project = os.environ.get("CLOUDSDK_CORE_PROJECT")
    if env_project:
        return env_project
    active = _active_config(directory)
    if active is None:
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(os.path.join(directory, "configurations", f"config_{active}"),
                    encoding="utf-8")
        return parser.get("core", "project", fallback=None) or None
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None


def resolve(project_id: Optional[str], credentials: Any) -> Tuple[str, str]:
    """The project id and where it came from; ``ConfigurationError`` when there is none."""
    if project_id is not None:
        return check(project_id, "project_id"), "project_id"
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        value = os.environ.get(name, "").strip()
        if value:
            return check(value, name), name
    from_credentials = getattr(credentials, "project_id", None) if credentials else None
    if from_credentials:
        return check(from_credentials, "credentials.project_id"), "credentials"
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    if key_file:
        project = _from_key_file(key_file)
        if project:
            return check(project, "GOOGLE_APPLICATION_CREDENTIALS"), key_file
    project = _from_gcloud()
    if project:
        return check(project, "gcloud configuration"), "gcloud"
    raise ConfigurationError(MISSING)
