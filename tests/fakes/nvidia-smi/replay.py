"""A fake nvidia-smi that answers from a capture file: ``python replay.py CAPTURE [nvidia-smi args]``.

A capture is nvidia_gpu_exporter's format (tests/recorded/nvidia-smi/): sections under banners

    ################################################################################
    # idle :: nvidia-smi (default table)
    # $ nvidia-smi
    ################################################################################
    <what the command printed>

It answers as the recorded driver did:
- no arguments: the ``idle :: nvidia-smi (default table)`` section, verbatim;
- ``-L``: the ``capabilities :: list (-L)`` section, verbatim;
- ``--query-gpu=F1,F2,... --format=csv[,noheader][,nounits]``: the columns F1, F2... of the
  ``idle :: query-gpu`` CSV, in the order asked, with the header and the units only when
  asked for. A field the capture did not record is refused as nvidia-smi refuses a field
  its driver does not know (``Field "F" is not a valid field to query.``, status 2): the
  capture cannot say its value, and the auditor must then call it unknown.
A section the capture lacks answers as a driver that fails it (status 9); anything else is
an unexpected call, status 2.
"""

import re
import sys

BANNER = re.compile(r"^#{20,}\n# (?P<name>[^\n]+)\n(?:#[^\n]*\n)*?#{20,}\n", re.MULTILINE)
UNIT = re.compile(r"^(?P<field>.+?) \[(?P<unit>[^\]]+)\]$")


def sections(text):
    found = {}
    marks = list(BANNER.finditer(text))
    for mark, following in zip(marks, marks[1:] + [None]):
        body = text[mark.end():following.start() if following else len(text)]
        found[mark.group("name").strip()] = body.rstrip("\n") + "\n"
    return found


def query(csv, fields, header, units):
    lines = [line for line in csv.splitlines() if line.strip()]
    names = [cell.strip() for cell in lines[0].split(",")]
    columns, unit_of = [], {}
    for name in names:
        match = UNIT.match(name)
        columns.append(match.group("field") if match else name)
        if match:
            unit_of[match.group("field")] = match.group("unit")
    for field in fields:
        if field not in columns:
            print(f'Field "{field}" is not a valid field to query.')
            print()
            return 2
    picked = [columns.index(field) for field in fields]
    if header:
        print(", ".join(names[i] for i in picked))
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.split(",")]
        out = []
        for i in picked:
            value, unit = cells[i], unit_of.get(columns[i])
            if not units and unit and value.endswith(" " + unit):
                value = value[: -len(unit) - 1]
            out.append(value)
        print(", ".join(out))
    return 0


def main(argv):
    capture, args = argv[0], argv[1:]
    with open(capture, encoding="utf-8") as handle:
        found = sections(handle.read())

    def section(name):
        if name not in found:
            print(f"fake nvidia-smi: the capture has no section {name!r}", file=sys.stderr)
            sys.exit(9)
        return found[name]

    if not args:
        sys.stdout.write(section("idle :: nvidia-smi (default table)"))
        return 0
    if args == ["-L"]:
        sys.stdout.write(section("capabilities :: list (-L)"))
        return 0
    if len(args) == 2 and args[0].startswith("--query-gpu=") and args[1].startswith("--format="):
        options = args[1][len("--format="):].split(",")
        if "csv" in options:
            return query(section("idle :: query-gpu (csv, what the exporter parses)"),
                         args[0][len("--query-gpu="):].split(","), "noheader" not in options, "nounits" not in options)
    print(f"fake nvidia-smi: unexpected arguments: {' '.join(args)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
