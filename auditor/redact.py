"""Keeps secrets, terminal control and (on request) identities out of reports: a report is
meant to be pasted into issues, docs and CI logs.

Each concern is a function over one string: ``redact_text`` (credentials anywhere in free
text), ``redact_value`` (an environment variable), ``escape_controls`` (characters that would act
on a terminal instead of being read), ``Identity.redact`` and ``abbreviate_home`` (user and host
names). ``map_strings`` applies one of them to every string of a facts tree, so nothing that
leaves a probe is missed: ``scrub_snapshot`` is what the runner and the snapshot reader call.

Every pattern runs in time linear in its input: each starts at a literal or behind a look-behind
that lets a run of characters start it only once, and no two quantifiers compete for the same
characters, so the engine never backtracks more than a bounded distance. (The userinfo pattern
this replaces, ``scheme://\\S*@``, took 47 s on a 120 KB variable.)
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

REDACTED = "[redacted]"  # not <redacted>: Markdown viewers hide what looks like an HTML tag

# --- secret names ------------------------------------------------------------------------

# Word parts (split on anything not a letter or digit) that say the value is a credential:
# HF_TOKEN, WANDB_API_KEY, SENTRY_DSN, GITLAB_PAT. Whole parts, so TORCH_CUDA_ARCH_LIST is not
# caught by ARCH nor CUDA_PATH by PAT.
_SECRET_PARTS = frozenset({
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "KEY", "APIKEY", "CREDENTIAL", "CRED",
    "AUTH", "AUTHORIZATION", "COOKIE", "SESSION", "PRIVATE", "SIGNATURE", "PAT", "DSN",
})
# Fused into longer names too (PGPASSWORD, HFTOKEN, apiKey); TOKENIZERS_PARALLELISM is not one.
_SECRET_INSIDE = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|APIKEY|TOKEN(?!IZ)", re.IGNORECASE)
_NAME_PARTS = re.compile(r"[^A-Za-z0-9]+")


@functools.lru_cache(maxsize=4096)  # free text repeats its names; a 1 MB text may hold 100k of them
def is_secret_name(name: str) -> bool:
    if _SECRET_INSIDE.search(name):
        return True
    parts = _NAME_PARTS.split(name.upper())
    return any(part in _SECRET_PARTS or part.removesuffix("S") in _SECRET_PARTS for part in parts)


def redact_value(name: str, value: str) -> str:
    """An environment variable's value as a report may show it."""
    return REDACTED if is_secret_name(name) else redact_text(value)


# --- credentials in free text ------------------------------------------------------------

# Values shaped like a known kind of token, whatever holds them. The minimum lengths are below
# the real tokens' (GitHub 36 after the prefix, Hugging Face 34, GitLab 20, AWS 16) and well
# above words such as hf_transfer or sk-learn. A token may follow "_" or "-" (TORCH_ghp_...),
# not a letter or digit (task-...). The prefix is kept: it tells the reader which kind of
# credential sat where.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?P<keep>"
    r"gh[pousr]_(?=[A-Za-z0-9]{30})"  # GitHub: personal, OAuth, user-to-server, server, refresh
    r"|github_pat_(?=[A-Za-z0-9_]{30})"  # GitHub fine-grained
    r"|sk-(?=[A-Za-z0-9_-]{20})"  # OpenAI (sk-proj-, sk-svcacct-), Anthropic (sk-ant-)
    r"|hf_(?=[A-Za-z0-9]{30})"  # Hugging Face
    r"|xox[a-z]-(?=[A-Za-z0-9-]{10})"  # Slack
    r"|glpat-(?=[A-Za-z0-9_-]{20})"  # GitLab
    r"|(?:AKIA|ASIA)(?=[A-Z0-9]{16}(?![A-Za-z0-9]))"  # AWS access key ids
    r"|AIza(?=[A-Za-z0-9_-]{35})"  # Google API keys
    r"|(?=eyJ[A-Za-z0-9_-]{8,}\.eyJ)"  # a JWT: header and payload are base64url of '{"'
    r")[A-Za-z0-9_.-]+"
)
# "Bearer TOKEN" in a header or an error message; the word alone ("Bearer authentication") is
# shorter than a token.
_BEARER = re.compile(r"(?<![A-Za-z0-9_-])(?P<keep>bearer[ \t]{1,8})[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)
# A PEM private key: the body runs to the next "-", which starts the END line.
_PEM_KEY = re.compile(r"(?P<keep>-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)[^-]+")

# NAME=value, NAME: value, "name": "value", name='value' where NAME is secret-shaped. Only the
# name and separator are matched: the value is measured in code (_assigned_value), so a value
# that is not redacted is still searched for the next name.
# The look-ahead lets the regex engine pass over names without a secret word in their first 128
# characters (nearly all names; no credential's name is longer) without a call back into Python
# for each. Its words are the parts that hold no other part (PASS stands for PASSWORD too).
_NAME_WORDS = sorted(part for part in _SECRET_PARTS if not any(other != part and other in part for other in _SECRET_PARTS))
_HOLDS_A_NAME_WORD = (r"(?=[A-Za-z0-9_.]{0,127}?(?i:(?=[" + "".join(sorted({word[0] for word in _NAME_WORDS}))
                      + "])(?:" + "|".join(_NAME_WORDS) + ")))")
_ASSIGNMENT = re.compile(r"(?<![A-Za-z0-9_.])(?=[A-Za-z_])" + _HOLDS_A_NAME_WORD
                         + r"(?P<name>[A-Za-z_][A-Za-z0-9_.]*)[\"']?[ \t]{0,4}[=:](?P<space>[ \t]{0,4})")
_AUTH_SCHEME = re.compile(r"(?:bearer|basic|digest|token)[ \t]{1,4}", re.IGNORECASE)  # kept: says what follows
_BARE_VALUE = re.compile(r"[^\s,;&\"'`<>()\[\]{}]*")
_QUOTES = "\"'`"
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning")
_VALUE_LIMIT = 4096  # how far a quoted or spaced value may run; bounds the work per name

# URL userinfo: scheme://user:password@host and scheme://TOKEN@host. It runs to the last "@"
# before a space, since careless passwords hold "/" and "@" too; it never reaches into the next
# URL nor past 256 characters, which bounds each attempt.
_SCHEME = r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)"
_URL_USERINFO = re.compile(_SCHEME + r"(?P<userinfo>(?:[^\s:]|:(?!//)){0,256})@")
# A password with spaces ("https://user:two words@host"), when the URL names a user: up to the
# first "@" on the line that a host follows, unless the colon is a port's (https://host:8080 ...).
_URL_SPACED_PASSWORD = re.compile(
    _SCHEME + r"(?P<user>[^\s:/@]{1,64}):(?!\d{1,5}(?:[/?#\s]|$))(?:[^\n@:]|:(?!//)){1,256}?@(?=[A-Za-z0-9\[])")
# user:password@host with no scheme (a DSN written without one, a proxy setting). The password
# may not hold ":" or "/", which keeps host:port/path out and bounds each attempt by the next
# candidate's own colon.
_BARE_USERINFO = re.compile(
    r"(?<![A-Za-z0-9._%+:/@-])(?P<user>[A-Za-z0-9._%+-]{1,64}):[^\s:/@]{1,256}@(?=[A-Za-z0-9\[])")


def redact_text(text: str) -> str:
    """Free text (an error message, a probe's reason, a file's contents) with every credential
    it holds replaced by REDACTED. Redacting a little too much is the safe way to be wrong."""
    text = _PEM_KEY.sub(_keep_prefix, text)
    text = _redact_assignments(text)
    text = _TOKEN.sub(_keep_prefix, text)
    text = _BEARER.sub(_keep_prefix, text)
    text = _URL_USERINFO.sub(_redact_userinfo, text)
    text = _URL_SPACED_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _BARE_USERINFO.sub(lambda m: f"{m['user']}:{REDACTED}@", text)


def _keep_prefix(match: re.Match) -> str:
    return match["keep"] + REDACTED


def _redact_assignments(text: str) -> str:
    pieces, done = [], 0
    for match in _ASSIGNMENT.finditer(text):
        if match.start() < done or not _names_a_credential(match["name"]):
            continue  # inside a value already redacted, or an ordinary name
        start, end = _assigned_value(text, match.end(), bool(match["space"]))
        if end > start:
            pieces += [text[done:start], REDACTED]
            done = end
    return "".join(pieces) + text[done:] if pieces else text


def _names_a_credential(name: str) -> bool:
    """In free text, a secret-shaped name that ends in the singular and is no exception's class:
    "known keys: select, ignore", "tokens: 5" and "TokenError: ..." name no credential."""
    last = _NAME_PARTS.split(name.upper())[-1]
    plural = last.endswith("S") and last[:-1] in _SECRET_PARTS
    return is_secret_name(name) and not plural and not name.endswith(_EXCEPTION_SUFFIXES)


def _assigned_value(text: str, start: int, spaced: bool) -> tuple[int, int]:
    scheme = _AUTH_SCHEME.match(text, start)
    if scheme:
        start, spaced = scheme.end(), False  # the credential after "Bearer " is one word
    limit = min(len(text), start + _VALUE_LIMIT)
    line_end = text.find("\n", start, limit)
    line_end = limit if line_end < 0 else line_end
    if start < len(text) and text[start] in _QUOTES:
        close = text.find(text[start], start + 1, line_end)
        if close > 0:
            return start + 1, close
        start += 1
    if spaced:
        # "password: two words" as in YAML or an HTTP header: the value is the rest of the line.
        return start, len(text[start:line_end].rstrip()) + start
    return start, _BARE_VALUE.match(text, start).end()


def _redact_userinfo(match: re.Match) -> str:
    user, has_password, _ = match["userinfo"].partition(":")
    # With a password, the user name is an identity worth keeping; alone it may be a token.
    return f"{match['scheme']}{user}:{REDACTED}@" if has_password else f"{match['scheme']}{REDACTED}@"


# --- control characters ------------------------------------------------------------------

# C0 controls but tab and newline, DEL, C1 controls (U+009B is a one-character CSI), and the
# bidirectional overrides that make text read differently than it is stored. A carriage
# return is escaped too: alone it rewrites the line on a terminal; CRLF line ends become LF.
_ESCAPES = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
            for code in (*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0), *range(0x202a, 0x202f),
                         *range(0x2066, 0x206a))}
_CONTROL = re.compile("[" + "".join(re.escape(chr(code)) for code in _ESCAPES) + "]")


def escape_controls(text: str) -> str:
    r"""Text from the machine with its control characters shown, not obeyed: ESC is "\x1b"."""
    if not _CONTROL.search(text):
        return text
    return text.replace("\r\n", "\n").translate(_ESCAPES)


# --- every string of a tree --------------------------------------------------------------


def map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    """A copy of a tree of dataclasses, dicts, lists and tuples with fn applied to every string
    in it, dict keys included; other values are shared, not copied."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {map_strings(key, fn): map_strings(value, fn) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_strings(item, fn) for item in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: map_strings(getattr(obj, f.name), fn)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def scrub_text(text: str) -> str:
    # Redacted first, on the text as it came, so escaping cannot split a token in two.
    return escape_controls(redact_text(text))


def scrub_snapshot(snapshot):
    """The facts with every credential redacted and every control character escaped: what
    every report, finding and saved snapshot is made from."""
    return map_strings(snapshot, scrub_text)


# --- user and host names -----------------------------------------------------------------

# Replacements valid as they are in JSON, XML and Markdown (no <, >, &, quotes or *; an
# underscore inside a word is no emphasis), and one word each, so redacting twice changes nothing.
USER_TOKEN = "REDACTED_USER"
HOST_TOKEN = "REDACTED_HOST"
_OTHER_HOME = re.compile(r"(?<![A-Za-z0-9_.-])(?P<base>/home/|/Users/|[A-Za-z]:\\Users\\)[^/\\\s:;,'\"()\[\]<>|]+")


def home_directory() -> Optional[str]:
    """This user's home directory, or None when there is none to abbreviate (no HOME and no
    passwd entry, or a home of "/" that every path would match)."""
    try:
        home = str(Path.home())
    except (RuntimeError, KeyError):
        return None
    home = home.rstrip("/\\")
    return home if home not in ("", ".") else None


def abbreviate_home(text: str, home: Optional[str]) -> str:
    """Paths under home written as ~/...: shorter, and the user's name is not in them."""
    if not home or home not in text:
        return text
    return re.sub(rf"(?<![A-Za-z0-9_.~-]){re.escape(home)}(?![A-Za-z0-9_.-])", "~", text)


@dataclass(frozen=True)
class Identity:
    """Who and where an audit ran: what --redact-paths removes."""

    home: Optional[str]
    user: Optional[str]
    hosts: tuple[str, ...]  # the host name and its short form

    @classmethod
    def of_this_machine(cls) -> Identity:
        try:
            user = getpass.getuser()  # LOGNAME, USER... then the passwd entry
        except (KeyError, OSError):  # no such variable and no passwd entry for this uid
            user = None
        host = socket.gethostname()
        return cls(home=home_directory(), user=user or None,
                   hosts=tuple(name for name in dict.fromkeys((host, host.split(".")[0])) if name))

    @functools.cached_property
    def _names(self) -> Optional[re.Pattern]:
        # Whole words only, so a user "ml" leaves "html" alone; "-" and "." end a word, so the
        # name goes from "alice-laptop" too. Host names are case-insensitive, and the longest
        # goes first so a full host name goes as one; user names are case-sensitive.
        alternatives = []
        if self.hosts:
            hosts = "|".join(re.escape(host) for host in sorted(self.hosts, key=len, reverse=True))
            alternatives.append(f"(?P<host>(?i:{hosts}))")
        if self.user:
            alternatives.append(f"(?P<user>{re.escape(self.user)})")
        if not alternatives:
            return None
        return re.compile(rf"(?<![A-Za-z0-9_])(?:{'|'.join(alternatives)})(?![A-Za-z0-9_])")

    def redact(self, text: str) -> str:
        text = abbreviate_home(text, self.home)
        text = _OTHER_HOME.sub(lambda m: m["base"] + USER_TOKEN, text)
        if self._names is None:
            return text
        return self._names.sub(lambda m: HOST_TOKEN if m.lastgroup == "host" else USER_TOKEN, text)


def redact_identity(snapshot, identity: Optional[Identity] = None):
    """The snapshot without this machine's user name, host name and home directory (for
    --redact-paths): every format and every finding made from it is without them too."""
    return map_strings(snapshot, (identity or Identity.of_this_machine()).redact)
