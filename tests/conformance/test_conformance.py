"""The conformance suite: every backend, the same cases, identical outputs.

For each backend and case class: (1) the results equal the software engine's, value for
value (the software engine is the reference model; for ``sw`` itself this part is
trivially true); (2) where the vector file carries an independent expectation (tx hash,
sender), the backend's result matches it.
"""

from __future__ import annotations

import pytest

from tests.conformance.cases import CLASSES, load_class

_CACHE: dict[tuple[int, str], tuple] = {}


def _run(engine, cls: str):
    """Decode a class once per engine (simulated backends are slow; several tests read it)."""
    key = (id(engine), cls)
    if key not in _CACHE:
        raws, expected = load_class(cls, full=engine.name == "sw")
        _CACHE[key] = (raws, expected, list(engine.decode_many(raws)))
    return _CACHE[key]


@pytest.mark.parametrize("cls", CLASSES)
def test_identical_to_software_engine(engine, software, cls: str) -> None:
    raws, _, got = _run(engine, cls)
    want = list(software.decode_many(raws))
    assert len(got) == len(raws)
    bad = [(i, raws[i].hex()[:40], got[i], want[i]) for i in range(len(raws)) if got[i] != want[i]]
    assert not bad, f"{engine.name}: {len(bad)} of {len(raws)} differ from sw; first: {bad[0]}"


@pytest.mark.parametrize("cls", ["mainnet_block", "typed_txs"])
def test_matches_vector_expectations(engine, cls: str) -> None:
    raws, expected, got = _run(engine, cls)
    for i, (exp, res) in enumerate(zip(expected, got, strict=True)):
        assert res.ok, f"{cls}[{i}]: {res}"
        assert "0x" + res.hash.hex() == exp["hash"].lower(), f"{cls}[{i}] hash"
        if "sender" in exp:
            assert "0x" + res.sender.hex() == exp["sender"].lower(), f"{cls}[{i}] sender"


@pytest.mark.parametrize("raw", [b"", b"\x02", b"\xc0", b"\x7f" * 9],
                         ids=["empty", "type-only", "empty-list", "junk"])
def test_edge_packets(engine, software, raw: bytes) -> None:
    assert engine.decode(raw) == software.decode(raw)


def _swaps(engine, raws: list[bytes]):
    from mevblade.control.engine.software.swap import decode_swap_tx

    if hasattr(engine, "decode_with_swaps"):  # the board: one pass, records and swap messages
        return [swap for _, swap in engine.decode_with_swaps(raws)]
    if engine.name == "sw":
        return [decode_swap_tx(t) if (t := engine.decode(r)).ok else None for r in raws]
    # rtl: the transaction decoder's records, then the swap decoder RTL on each decoded call
    # (a contract creation is never a swap; pre-EIP-155 counts as chain 1, as in software)
    txs = list(engine.decode_many(raws))
    return [engine.decode_swap(t.to, t.data, t.value, t.chain_id or 1) if t.ok and t.to is not None else None
            for t in txs]


@pytest.mark.parametrize("cls", ["mainnet_block", "mutations"])
def test_swaps_identical_to_software_engine(engine, software, cls: str) -> None:
    """Router02 swap decoding (the board's swap decoder vs the software decoder, same routers)."""
    from mevblade.control.engine.software.swap import decode_swap_tx

    raws, _ = load_class(cls, full=engine.name == "sw")
    got = _swaps(engine, raws)
    want = [decode_swap_tx(t) if (t := software.decode(r)).ok else None for r in raws]
    bad = [i for i in range(len(raws)) if got[i] != want[i]]
    assert not bad, f"{engine.name}: swaps differ at {bad[:10]}"
    if cls == "mainnet_block":
        assert sum(s is not None for s in got) == 9  # the block's nine Router02 swaps (all in every slice)


# ------------------------------------------------------------------ cycle evaluator

def _eval_cases(vectors) -> list:
    from mevblade.sim.tb.evaluator.cases import CLASSES as EVAL_CLASSES
    from mevblade.sim.tb.evaluator.cases import cycles

    return [hops for cls in EVAL_CLASSES for hops in cycles(cls, 3, seed=7, vectors=vectors)]


def test_eval_cycle_identical_to_software_engine(engine, software, vectors) -> None:
    """The exact 2-pool optimum (amount in, profit, exactness, candidates) of seeded cycles from
    every evaluator case class, the shared Uniswap V2 vectors' reserves among them."""
    from mevblade.control.engine.base import EngineUnavailable

    cases = _eval_cases(vectors)
    try:
        got = [engine.eval_cycle(h) for h in cases]
    except EngineUnavailable as exc:
        pytest.skip(f"backend {engine.name}: {exc}")
    want = [software.eval_cycle(h) for h in cases]
    bad = [i for i in range(len(cases)) if got[i] != want[i]]
    assert not bad, f"{engine.name}: cycles differ at {bad[:10]}; first {got[bad[0]]} != {want[bad[0]]}"
    assert any(w.profit > 0 for w in want) and any(w.profit == 0 for w in want)


# ------------------------------------------------------------------ backrun evaluation of a swap

def _evaluate_cases():
    from mevblade.sim.tb.backrun.cases import block_swaps, make_swap, make_table, table_for_swaps

    synth = make_table(7, zero_sibling=True)
    specs = [([0, 1], {}), ([1, 0], {"exact_out": True}), ([0, 1, 2], {}), ([0, 1], {"slippage_ok": False}),
             ([0, 1, 2, 3, 4, 0], {"frac": 0.001})]
    cases = [(synth, make_swap(synth, p, **o)) for p, o in specs]
    swaps = [s for _, s in block_swaps()]
    real = table_for_swaps(swaps)
    return cases + [(real, s) for s in swaps[:4]]


def test_evaluate_swap_identical_to_software_engine(engine, software) -> None:
    """A pending swap's backrun opportunities (pools, tokens, amount in, profit, exactness) on
    seeded tables: synthetic 1–2 hop exact-in/out swaps, a reverting one, a 5-hop path (which the
    board leaves to the host) and mainnet-block swaps on a realistic table."""
    from mevblade.control.engine.base import EngineUnavailable

    cases = _evaluate_cases()
    try:
        got = [engine.evaluate_swap(s, t) for t, s in cases]
    except EngineUnavailable as exc:
        pytest.skip(f"backend {engine.name}: {exc}")
    want = [software.evaluate_swap(s, t) for t, s in cases]
    bad = [i for i in range(len(cases)) if got[i] != want[i]]
    assert not bad, f"{engine.name}: opportunities differ at {bad}; first {got[bad[0]]} != {want[bad[0]]}"
    assert sum(len(w) for w in want) >= 6 and any(w == [] for w in want)
    if engine.name in ("pynq", "rtl"):  # both run the appliance top's backrun unit (rtl: in Verilator)
        assert engine.host_evaluations == 1  # only the 5-hop path went to the host
