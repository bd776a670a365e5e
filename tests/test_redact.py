"""Secrets, control characters and (on request) identities never reach a report.

Unit tests of auditor/redact.py; tests/test_privacy.py runs the CLI end to end.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from auditor import redact
from auditor.facts import ProbeRun
from auditor.redact import (HOST_TOKEN, REDACTED, USER_TOKEN, Identity, abbreviate_home, escape_controls,
                            home_directory, is_secret_name, map_strings, redact_text, redact_value, scrub_text)

GHP = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"  # 36 characters after the prefix, as GitHub's
HF = "hf_" + "AbCdEfGhIj" * 3 + "KlMn"  # 34, as Hugging Face's


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
                                  "HUGGING_FACE_HUB_TOKEN", "KAGGLE_KEY", "GITHUB_TOKEN", "MY_SESSION_COOKIE",
                                  "GPG_PASSPHRASE", "GITLAB_PAT", "SSH_AUTH_SOCK", "WANDB_DSN", "SENTRY_DSN",
                                  "AWS_CREDENTIALS", "DB_CREDENTIAL", "MY_PRIVATE_KEY", "TORCH_PASS", "apiKey",
                                  "hf-token", "KEYS", "HF_HUB_TOKENS"])
def test_secret_looking_names_are_redacted(name):
    assert is_secret_name(name)
    assert redact_value(name, "value") == REDACTED


@pytest.mark.parametrize("name", ["CUDA_VISIBLE_DEVICES", "TORCH_CUDA_ARCH_LIST", "OMP_NUM_THREADS", "HF_HOME",
                                  "TF_CPP_MIN_LOG_LEVEL", "KEYRING_BACKEND_PATH", "PATH", "XLA_FLAGS", "CUDA_PATH",
                                  "PYTHONPATH", "LD_LIBRARY_PATH", "TOKENIZERS_PARALLELISM", "PYTORCH_CUDA_ALLOC_CONF",
                                  "NCCL_SOCKET_IFNAME", "HF_HUB_ENABLE_HF_TRANSFER", "TF_FORCE_GPU_ALLOW_GROWTH",
                                  "KERAS_BACKEND", "JAX_PLATFORMS", "PJRT_DEVICE", "XLA_PYTHON_CLIENT_MEM_FRACTION"])
def test_ordinary_names_keep_their_values(name):
    assert not is_secret_name(name)
    assert redact_value(name, "/opt/value") == "/opt/value"


# --- token shapes, whatever holds them ---------------------------------------------------


@pytest.mark.parametrize("token, shown", [
    (GHP, "ghp_"), ("gho_" + "x" * 36, "gho_"), ("ghu_" + "x" * 36, "ghu_"), ("ghs_" + "x" * 36, "ghs_"),
    ("ghr_" + "x" * 36, "ghr_"),
    ("github_pat_11ABCDEFG0" + "x" * 20 + "_" + "y" * 59, "github_pat_"),
    ("sk-" + "Ab3" * 16, "sk-"), ("sk-proj-" + "Ab3_-" * 30, "sk-"), ("sk-ant-api03-" + "z" * 90, "sk-"),
    (HF, "hf_"),
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-"), ("xoxp-1234-5678-abcdefgh", "xoxp-"),
    ("AKIAIOSFODNN7EXAMPLE", "AKIA"), ("ASIAY34FZKBOKMUTVV7A", "ASIA"),
    ("glpat-" + "Xy9_-" * 4, "glpat-"),
    ("AIza" + "SyA-" * 8 + "abc", "AIza"),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", ""),
])
def test_token_shapes_are_redacted_in_any_text(token, shown):
    assert redact_text(f"TORCH_SOMETHING={token}") == f"TORCH_SOMETHING={shown}{REDACTED}"
    assert redact_text(f"failed with {token}, denied") == f"failed with {shown}{REDACTED}, denied"
    assert redact_value("TORCH_EXTRA", f"/opt/{token}/x") == f"/opt/{shown}{REDACTED}/x"


def test_bearer_credentials_keep_the_scheme():
    assert redact_text("Authorization: Bearer abc.DEF-123_456~789") == f"Authorization: Bearer {REDACTED}"
    assert redact_text("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='") == \
        f"curl -H 'Authorization: Basic {REDACTED}'"
    assert redact_text("sent bearer Zm9vYmFyYmF6cXV4cXV1eA in the header") == f"sent bearer {REDACTED} in the header"


def test_a_pem_private_key_loses_its_body():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA+/x==\nq83n\n-----END RSA PRIVATE KEY-----"
    assert redact_text(f"read {key} ok") == \
        f"read -----BEGIN RSA PRIVATE KEY-----{REDACTED}-----END RSA PRIVATE KEY----- ok"


@pytest.mark.parametrize("text", [
    "scikit-learn sk-learn sk-video hf_transfer hf_hub_download hf_xet", "ghp_short gho_1234", "xoxb-1",
    "AKIA1234", "AKIAIOSFODNN7EXAMPLEX", "glpat-short", "eyJhbGciOi.eyJzdWIi", "risk-management-framework-overview",
    "Bearer authentication failed", "torch 2.1.0+cu121", "cuda:0", "0000:3b:00.0", "/usr/local/cuda/lib64:/opt/lib",
    "KeyError: 'HF_HOME'", "TokenError: EOF in multi-line statement", "TOKENIZERS_PARALLELISM=false",
    "https://localhost:8080/simple failed, write to admin@example.com", "git@github.com:org/repo.git",
    "https://pypi.org/simple", "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True", "--xla_gpu_cuda_data_dir=/usr/local/cuda",
    "Intel(R) Xeon(R) Platinum 8480+ @ 2.00GHz", "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
    "unknown key 'selct' in [tool.auditor]; known keys: select, ignore, fail-on, profiles", "tokens: 5, keys: 3",
    "GOOGLE_APPLICATION_CREDENTIALS=/etc/gcp/sa.json",
])
def test_near_misses_are_kept(text):
    assert redact_text(text) == text


# --- NAME=value inside free text ---------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("ImportError: cannot read HF_TOKEN=abc123 from the cache", f"ImportError: cannot read HF_TOKEN={REDACTED} from the cache"),
    ("WANDB_API_KEY=abc,TORCH_HOME=/x", f"WANDB_API_KEY={REDACTED},TORCH_HOME=/x"),
    ("password: two words here\nnext: line", f"password: {REDACTED}\nnext: line"),
    ("db password = hunter 2 ", f"db password = {REDACTED} "),
    ('{"api_key": "a b c", "user": "bob"}', f'{{"api_key": "{REDACTED}", "user": "bob"}}'),
    ("{'token': 'abc', 'n': 1}", f"{{'token': '{REDACTED}', 'n': 1}}"),
    ("GET /x?access_token=abc123&page=2", f"GET /x?access_token={REDACTED}&page=2"),
    ("--hf-token=abc123 --verbose", f"--hf-token={REDACTED} --verbose"),
    ("X-Amz-Signature=abcdef&X-Amz-Credential=AKIA/x", f"X-Amz-Signature={REDACTED}&X-Amz-Credential={REDACTED}"),
    ("note: SENTRY_DSN=https://k@o1.ingest.sentry.io/1", f"note: SENTRY_DSN={REDACTED}"),
])
def test_secret_named_assignments_in_free_text_are_redacted(text, expected):
    assert redact_text(text) == expected


# --- URL userinfo ------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("https://user:pa55word@host/simple", "https://user:[redacted]@host/simple"),
    ("https://hf_abcdef@host/x", "https://[redacted]@host/x"),  # a bare token as the user name
    ("https://user:pa/ss@host/x", "https://user:[redacted]@host/x"),
    ("https://user:p@ss@host/x", "https://user:[redacted]@host/x"),
    ("https://user:two words@host/x", "https://user:[redacted]@host/x"),  # a password with a space
    ("postgres://admin:hunter2@db:5432/x then https://ok/y", "postgres://admin:[redacted]@db:5432/x then https://ok/y"),
    ("proxy admin:hunter2@proxy.internal:3128 used", "proxy admin:[redacted]@proxy.internal:3128 used"),  # no scheme
    ("https://host/x", "https://host/x"),
    ("/usr/local/cuda/lib64:/opt/lib", "/usr/local/cuda/lib64:/opt/lib"),
])
def test_credentials_inside_urls_are_redacted(value, expected):
    assert redact_value("HF_ENDPOINT", value) == expected


def test_redacting_twice_changes_nothing():
    """A saved snapshot is scrubbed again when it is replayed."""
    text = (f"HF_TOKEN=abc {GHP} https://u:p w@h/x admin:pw@db token: a b\n'api_key': 'x' "
            "Authorization: Bearer abcdefghijklmnopqrstuvwxyz -----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----")
    once = redact_text(text)
    assert "abc " not in once and "p w" not in once and "a b" not in once
    assert redact_text(once) == once


def _repeated(unit: str):
    return lambda size: unit * (size // len(unit))


# Shapes that made the former pattern backtrack (a long run of scheme characters, a URL with
# no "@") and others aimed at each of today's: all must take time linear in their length.
ADVERSARIAL = {
    "letters": _repeated("a"), "url without @": lambda size: "https://" + "a" * size, "schemes": _repeated("a://"),
    "colons": _repeated("a:"), "equals": _repeated("a="), "secret names": _repeated("token="), "ats": _repeated("@"),
    "userinfo without @": _repeated("https://u:" + "x" * 300 + " "), "jwt start": _repeated("eyJ"),
    "pem": _repeated("-----BEGIN PRIVATE KEY-----"), "sk": _repeated("sk-"), "bearer": _repeated("Bearer "),
    "escapes": _repeated("\x1b"), "quotes": _repeated("key='"), "urls with userinfo": _repeated("ax://@"),
}


@pytest.mark.parametrize("shape", ADVERSARIAL)
def test_redaction_is_linear_in_the_input(shape):
    def cpu_seconds(size: int) -> float:
        text = ADVERSARIAL[shape](size)
        started = time.process_time()  # this process's CPU time: other work on the machine counts little
        scrub_text(text)
        return time.process_time() - started

    small, large = cpu_seconds(125_000), cpu_seconds(1_000_000)
    # 8 times the input: linear code takes about 8 times as long (quadratic, 64 times), and
    # 1 MB well within seconds; the former pattern took 47 s on 120 KB.
    assert large < 16 * small + 0.1, (small, large)
    assert large < 5, large


# --- control characters ------------------------------------------------------------------


@pytest.mark.parametrize("text, shown", [
    ("\x1b]0;owned\x07Debian", "\\x1b]0;owned\\x07Debian"),  # an OSC title sequence and BEL
    ("red \x1b[31mtext\x1b[0m", "red \\x1b[31mtext\\x1b[0m"),
    ("nul\x00here", "nul\\x00here"), ("del\x7f", "del\\x7f"), ("c1 \x9b31m csi", "c1 \\x9b31m csi"),
    ("bidi \u202eevil", "bidi \\u202eevil"), ("isolate \u2066x\u2069", "isolate \\u2066x\\u2069"),
    ("over\rwrite", "over\\x0dwrite"),  # a lone CR rewrites the line on a terminal
    ("line one\r\nline two", "line one\nline two"), ("keep\ttabs\nand newlines", "keep\ttabs\nand newlines"),
    ("Intel® Xeon™ µarch 日本語 é", "Intel® Xeon™ µarch 日本語 é"),
])
def test_control_characters_are_shown_not_obeyed(text, shown):
    assert escape_controls(text) == shown
    assert escape_controls(shown) == shown


# --- every string of a tree --------------------------------------------------------------


@dataclasses.dataclass
class _Leaf:
    name: str
    count: int
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class _Tree:
    run: ProbeRun
    leaves: list[_Leaf]
    by_key: dict[str, _Leaf]
    note: str | None = None


def test_map_strings_reaches_every_string_and_leaves_the_original_alone():
    tree = _Tree(run=ProbeRun("torch", "error", f"ImportError: {GHP}"),
                 leaves=[_Leaf(f"a {HF}", 3, ("x", f"t {GHP}"))],
                 by_key={f"TORCH_{GHP}": _Leaf("\x1b[2J", 0)}, note=None)
    scrubbed = map_strings(tree, scrub_text)
    assert scrubbed.run == ProbeRun("torch", "error", f"ImportError: ghp_{REDACTED}")
    assert scrubbed.leaves == [_Leaf(f"a hf_{REDACTED}", 3, ("x", f"t ghp_{REDACTED}"))]
    assert scrubbed.by_key == {f"TORCH_ghp_{REDACTED}": _Leaf("\\x1b[2J", 0)}
    assert scrubbed.note is None
    assert tree.run.reason == f"ImportError: {GHP}"  # a copy: the caller's facts are not changed


# --- user and host names -----------------------------------------------------------------

IDENTITY = Identity(home="/home/alice", user="alice", hosts=("gpu-box.example.com", "gpu-box"))


@pytest.mark.parametrize("text, expected", [
    ("/home/alice/.cache/torch", "~/.cache/torch"), ("/home/alice", "~"),
    ("PATH=/home/alice/bin:/home/alice/.local/bin", "PATH=~/bin:~/.local/bin"),
    ("/home/alice2/x", f"/home/{USER_TOKEN}/x"),  # not this home, but someone's
    ("/home/bob/venv /Users/carol/miniforge3", f"/home/{USER_TOKEN}/venv /Users/{USER_TOKEN}/miniforge3"),
    ("C:\\Users\\dan\\AppData", f"C:\\Users\\{USER_TOKEN}\\AppData"),
    ("/srv/data/home/alice/x", f"/srv/data/home/{USER_TOKEN}/x"),
    ("built by alice on GPU-BOX.example.com", f"built by {USER_TOKEN} on {HOST_TOKEN}"),
    ("worker gpu-box:8470, alice-laptop", f"worker {HOST_TOKEN}:8470, {USER_TOKEN}-laptop"),
    ("malice and Alice and gpu-boxes", "malice and Alice and gpu-boxes"),  # whole words; user names keep their case
])
def test_identity_redaction(text, expected):
    assert IDENTITY.redact(text) == expected
    assert IDENTITY.redact(expected) == expected


def test_identity_tokens_need_no_escaping_in_json_xml_or_markdown():
    for token in (USER_TOKEN, HOST_TOKEN):
        assert not set(token) & set("<>&\"'*`[]~|\\"), token
        assert " " not in token


def test_abbreviate_home_only_abbreviates_the_home_itself():
    assert abbreviate_home("/root/x /rootfs/y /data/root/z ~/w", "/root") == "~/x /rootfs/y /data/root/z ~/w"
    assert abbreviate_home("/root/x", None) == "/root/x"


def test_no_home_directory_means_no_abbreviation(monkeypatch):
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)
    assert home_directory() is None
    monkeypatch.undo()
    monkeypatch.setenv("HOME", "/")  # every path starts with it: nothing to abbreviate
    assert home_directory() is None


def test_identity_without_a_user_name_still_redacts_the_host(monkeypatch):
    def no_user():
        raise OSError("No username set in the environment")

    monkeypatch.setattr(redact.getpass, "getuser", no_user)
    monkeypatch.setattr(redact.socket, "gethostname", lambda: "node7.cluster.local")
    monkeypatch.setenv("HOME", "/home/someone")
    identity = Identity.of_this_machine()
    assert identity == Identity(home="/home/someone", user=None, hosts=("node7.cluster.local", "node7"))
    assert identity.redact("node7 node7.cluster.local /home/someone/x") == f"{HOST_TOKEN} {HOST_TOKEN} ~/x"
