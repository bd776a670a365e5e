"""The published JSON Schema of profile files, generated from auditor.profiles.document.

Editors that validate TOML against JSON Schema (taplo, Even Better TOML) can use the committed
auditor/schemas/profile-v1.json; a test regenerates it and fails when the two differ.
Regenerate with: python -m auditor.profiles.schema > auditor/schemas/profile-v1.json
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from auditor.profiles.document import ProfileDocument
from auditor.profiles.typed_toml import json_schema

SCHEMA_ID = "https://ml-env-auditor.invalid/schemas/profile-v1.json"


def profile_schema() -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "auditor profile", **json_schema(ProfileDocument)}


def render_schema() -> str:
    return json.dumps(profile_schema(), indent=2) + "\n"


def published_schema() -> str:
    return resources.files("auditor").joinpath("schemas/profile-v1.json").read_text(encoding="utf-8")


if __name__ == "__main__":
    print(render_schema(), end="")
