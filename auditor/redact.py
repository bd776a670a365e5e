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
# Credentials in URLs: https://user:password@host, or a bare token as in https://TOKEN@host.
# The userinfo runs to the last "@" of the URL, since careless passwords hold "/" and "@" too;
# redacting a little too much is the safe way to be wrong.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>\S*)@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_value(name: str, value: str) -> str:
    if is_secret_name(name):
        return REDACTED
    return _URL_USERINFO.sub(_redact_userinfo, value)


def _redact_userinfo(match: re.Match) -> str:
    user, has_password, _ = match["userinfo"].partition(":")
    # With a password, the user name is an identity worth keeping; alone it may be a token.
    return f"{match['scheme']}{user}:{REDACTED}@" if has_password else f"{match['scheme']}{REDACTED}@"
