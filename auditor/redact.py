"""Keeps secrets out of reports: a report is meant to be pasted into issues and docs."""

from __future__ import annotations

import re

REDACTED = "<redacted>"

# Names that say the value is a credential (HF_TOKEN, WANDB_API_KEY, AWS_SECRET_ACCESS_KEY,
# PGPASSWORD...). Matched on word parts so TORCH_CUDA_ARCH_LIST is not caught by "ARCH".
_SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|KEY|APIKEY|CREDENTIALS?|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE)S?(_|$)"
    r"|PASSWORD|SECRET|TOKEN",
    re.IGNORECASE,
)
# user:password@ in URLs, e.g. PIP_INDEX_URL=https://user:pw@host/simple
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]+)@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_value(name: str, value: str) -> str:
    if is_secret_name(name):
        return REDACTED
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
