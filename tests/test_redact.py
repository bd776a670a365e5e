"""Secrets in recorded environment variables never reach a report."""

from __future__ import annotations

import pytest

from auditor.redact import REDACTED, is_secret_name, redact_value


@pytest.mark.parametrize("name", ["HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
                                  "HUGGING_FACE_HUB_TOKEN", "KAGGLE_KEY", "GITHUB_TOKEN", "MY_SESSION_COOKIE"])
def test_secret_looking_names_are_redacted(name):
    assert is_secret_name(name)
    assert redact_value(name, "value") == REDACTED


@pytest.mark.parametrize("name", ["CUDA_VISIBLE_DEVICES", "TORCH_CUDA_ARCH_LIST", "OMP_NUM_THREADS", "HF_HOME",
                                  "TF_CPP_MIN_LOG_LEVEL", "KEYRING_BACKEND_PATH"])
def test_ordinary_names_keep_their_values(name):
    assert redact_value(name, "/opt/value") == "/opt/value"


@pytest.mark.parametrize("value, expected", [
    ("https://user:pa55word@host/simple", "https://user:<redacted>@host/simple"),
    ("https://hf_abcdef@host/x", "https://<redacted>@host/x"),  # a bare token as the user name
    ("https://user:pa/ss@host/x", "https://user:<redacted>@host/x"),
    ("https://user:p@ss@host/x", "https://user:<redacted>@host/x"),
    ("https://host/x", "https://host/x"),
    ("/usr/local/cuda/lib64:/opt/lib", "/usr/local/cuda/lib64:/opt/lib"),
])
def test_credentials_inside_urls_are_redacted(value, expected):
    assert redact_value("HF_ENDPOINT", value) == expected
