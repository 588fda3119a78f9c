"""protodino's training flags for the PyTorch trainers, read from protodino's own flag table.

`protodino train --print-flags-json` prints src/train/flags.ts's table (kind, default, choices, help)
and src/train/presets.ts's presets. Building the command line from that output, rather than from a
copy, is what keeps the DDP trainer's flags the same names, kinds, defaults and recipes as
`protodino train`'s: a flag added there is a flag here. Where node is not installed (a cluster node),
PROTODINO_FLAGS_JSON names a file written once with that command.
"""
import json
import os
import subprocess

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class FlagError(Exception):
    pass


def load_table():
    path = os.environ.get("PROTODINO_FLAGS_JSON")
    if path:
        with open(path) as f:
            return json.load(f)
    cli = os.path.join(REPO, "dist", "src", "cli", "main.js")
    if not os.path.exists(cli):
        raise FlagError(f"{cli} is missing: build protodino (npm run build), or set PROTODINO_FLAGS_JSON to the output "
                        "of `protodino train --print-flags-json`")
    try:
        out = subprocess.run(["node", cli, "train", "--print-flags-json"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise FlagError(f"could not read protodino's flag table ({e}); set PROTODINO_FLAGS_JSON to the output of "
                        "`protodino train --print-flags-json`")
    return json.loads(out)


def _value(name, kind, text):
    try:
        if kind == "int":
            v = float(text)
            if v != int(v):
                raise ValueError
            return int(v)
        if kind == "float":
            return float(text)
    except ValueError:
        raise FlagError(f"--{name}: expects {'an integer' if kind == 'int' else 'a number'}, got '{text}'")
    if kind == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise FlagError(f"--{name}: expects true or false, got '{text}'")
    return text


# What a resumed run never takes from the checkpoint's saved config, as `protodino train --resume`.
NOT_INHERITED = ("quiet", "profile", "output_dir", "resume")


def parse(argv, table, own, base=None):
    """argv as `protodino train` reads it (--flag v, --flag=v, --no-flag, a pair takes two numbers,
    --preset NAME under the flags given beside it), plus the trainer's `own` flags {name: default}.
    `base`: a resumed run's saved config, standing in for the defaults (NOT_INHERITED aside).
    Returns (config, own values). An unknown flag is an error that lists the known ones."""
    flags, presets = table["flags"], table["presets"]
    cfg = {k: (list(f["default"]) if isinstance(f["default"], list) else f["default"]) for k, f in flags.items()}
    if base:
        cfg.update({k: v for k, v in base.items() if k in flags and k not in NOT_INHERITED})
    mine = dict(own)
    preset = None
    given = {}

    def following(i, name):
        """The argument after argv[i], as --name's value, and its index."""
        if i + 1 >= len(argv):
            raise FlagError(f"--{name}: needs a value")
        return argv[i + 1], i + 1

    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise FlagError(f"unexpected argument '{arg}' (flags start with --)")
        name, eq, value = arg[2:].partition("=")
        value = value if eq else None
        negate = name.startswith("no-") and flags.get(name[3:], {}).get("kind") == "bool"
        if negate:
            name = name[3:]
        if name in mine:
            if isinstance(own[name], bool):
                mine[name] = True if value is None else _value(name, "bool", value)
            else:
                if value is None:
                    value, i = following(i, name)
                mine[name] = type(own[name])(value) if own[name] is not None else value
            i += 1
            continue
        if name not in flags:
            known = " ".join(f"--{k}" for k in list(flags) + list(own))
            raise FlagError(f"--{name}: unknown flag; known flags: {known}")
        f = flags[name]
        kind = f["kind"]
        if kind == "bool":
            if value is None and not negate and i + 1 < len(argv) and argv[i + 1].lower() in ("true", "false"):
                i += 1
                value = argv[i]
            v = False if negate else True if value is None else _value(name, "bool", value)
        else:
            if value is None:
                value, i = following(i, name)
                if kind == "pair" and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    i += 1
                    value += " " + argv[i]
            if kind == "pair":
                parts = value.replace(",", " ").split()
                if len(parts) != 2:
                    raise FlagError(f"--{name}: expects two numbers, got '{value}'")
                v = [_value(name, "float", p) for p in parts]
            else:
                v = _value(name, kind, value)
        if f.get("choices") and v not in f["choices"]:
            raise FlagError(f"--{name}: must be one of {', '.join(f['choices'])}, got '{v}'")
        if name == "preset":
            if v not in presets:
                raise FlagError(f"--preset: unknown preset '{v}'; known presets: {', '.join(presets)}")
            preset = v
        else:
            given[name] = v
        i += 1
    if preset:
        cfg.update(presets[preset])
        cfg["preset"] = preset
    cfg.update(given)
    return cfg, mine
