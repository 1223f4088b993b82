"""Swap decoder model: all nine Router02 selectors built with eth-abi, malformed ABI, router/chain rules,
CLI."""

from __future__ import annotations

import json
import random

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode
from eth_abi.exceptions import InvalidPointer
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mevblade.control.cli import app
from mevblade.control.engine import get_engine
from mevblade.control.engine.base import Engine
from mevblade.control.engine.software.swap import (
    CALLDATA_WINDOW,
    DEFAULT_ROUTERS,
    V2_FUNCTIONS,
    RouterConfig,
    SwapRegistry,
    swap_to_json,
    to_checksum,
)
from mevblade.control.engine.software.types_swap import MAX_PATH_LEN, SwapCall, SwapKind

UNI = DEFAULT_ROUTERS[0]
ROUTER = UNI.address
WETH = UNI.weth
assert WETH is not None
TOK = [bytes.fromhex(f"{i:02x}" * 20) for i in range(0x11, 0x19)]
ME = bytes.fromhex("5b38da6a701c568545dcfcb03fcb875f56beddc4")

FNS = list(V2_FUNCTIONS.values())
SEL = bytes.fromhex("38ed1739")
IDS = [f.name for f in FNS]


def types_for(fn) -> list[str]:
    return ["uint256", "address[]", "address", "uint256"] if fn.eth_in else \
        ["uint256", "uint256", "address[]", "address", "uint256"]


def build(fn, a: int = 10**18, b: int = 5 * 10**17, path: list[bytes] | None = None, to: bytes = ME,
          deadline: int = 1_700_000_000) -> tuple[bytes, int]:
    """Calldata (eth-abi) and msg.value for ``fn``: exact amount ``a``, bound ``b``."""
    if path is None:
        path = [WETH, TOK[0], TOK[1]] if fn.eth_in else [TOK[0], TOK[1], WETH] if fn.eth_out else TOK[:3]
    if fn.eth_in:
        # ETH-in: msg.value is amount_in (exact-in) or amount_in_max (exact-out); the first param is the other
        first = b if fn.kind is SwapKind.EXACT_IN else a
        value = a if fn.kind is SwapKind.EXACT_IN else b
        return fn.selector + encode(types_for(fn), [first, path, to, deadline]), value
    return fn.selector + encode(types_for(fn), [a, b, path, to, deadline]), 0


@pytest.fixture(scope="module")
def reg() -> SwapRegistry:
    return SwapRegistry.with_defaults()


def dec(reg: SwapRegistry, data: bytes, value: int = 0, to: bytes | None = ROUTER,
        chain: int = 1) -> SwapCall | None:
    return reg.decode(to, data, value, chain)


# ------------------------------------------------------------------ the nine functions


@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_selector_is_keccak_of_the_canonical_signature(fn) -> None:
    sig = f"{fn.name}({','.join(types_for(fn))})"
    assert keccak(text=sig)[:4] == fn.selector


def test_there_are_exactly_nine_router02_swaps() -> None:
    assert len(V2_FUNCTIONS) == 9
    assert sum(f.fee_on_transfer for f in FNS) == 3


@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_decodes_every_field(reg: SwapRegistry, fn) -> None:
    data, value = build(fn, a=123456789, b=987654321, deadline=2**255 + 7)
    s = dec(reg, data, value)
    assert s is not None
    assert (s.selector, s.function, s.kind,
            s.fee_on_transfer) == (fn.selector, fn.name, fn.kind, fn.fee_on_transfer)
    assert s.recipient == ME and s.deadline == 2**255 + 7 and s.router == ROUTER and s.venue == UNI.venue
    assert len(s.path) == 3
    if fn.kind is SwapKind.EXACT_IN:
        assert (s.amount_in, s.amount_out_min, s.amount_in_max,
                s.amount_out) == (123456789, 987654321, None, None)
    else:
        assert (s.amount_out, s.amount_in_max, s.amount_in,
                s.amount_out_min) == (123456789, 987654321, None, None)


@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_json_contract(reg: SwapRegistry, fn) -> None:
    data, value = build(fn)
    out = swap_to_json(dec(reg, data, value))
    assert out is not None
    amounts = ["amount_in",
               "amount_out_min"] if fn.kind is SwapKind.EXACT_IN else ["amount_in_max", "amount_out"]
    assert set(out) == {"selector", "kind", *amounts, "path", "recipient", "deadline", "fee_on_transfer"}
    assert out["selector"] == "0x" + fn.selector.hex() and out["kind"] == fn.kind.value
    assert all(isinstance(out[k], str) and out[k].isdigit() for k in [*amounts, "deadline"])
    assert out["recipient"] == to_checksum_address(ME)
    assert out["path"] == [to_checksum_address(p) for p in dec(reg, data, value).path]
    assert out["fee_on_transfer"] is fn.fee_on_transfer
    if fn.eth_in:  # msg.value is the input amount (exact or maximum)
        assert out["amount_in" if fn.kind is SwapKind.EXACT_IN else "amount_in_max"] == str(value)


@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(addr: bytes) -> None:
    assert to_checksum(addr) == to_checksum_address(addr)


def test_swap_to_json_of_none_is_none() -> None:
    assert swap_to_json(None) is None


# ------------------------------------------------------------------ ABI layout freedom Solidity allows


@pytest.mark.parametrize("extra", [b"\x00", b"\xff" * 31, b"\x01" * 32, b"\xab" * 200])
def test_trailing_bytes_are_ignored(reg: SwapRegistry, extra: bytes) -> None:
    data, _ = build(V2_FUNCTIONS[bytes.fromhex("38ed1739")])
    assert dec(reg, data + extra) == dec(reg, data) is not None


def _words(data: bytes) -> list[bytes]:
    args = data[4:]
    return [args[i:i + 32] for i in range(0, len(args), 32)]


def test_offset_with_a_gap_is_followed(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[bytes.fromhex("38ed1739")])
    w = _words(data)
    moved = data[:4] + b"".join(w[:2] + [(0xC0).to_bytes(32, "big")] + w[3:5] + [b"\x77" * 32] + w[5:])
    assert dec(reg, moved) == dec(reg, data) is not None
    assert abi_decode(types_for(V2_FUNCTIONS[data[:4]]), moved[4:])[2] == abi_decode(
        types_for(V2_FUNCTIONS[data[:4]]), data[4:])[2]


def test_unaligned_offset_is_followed(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[bytes.fromhex("8803dbee")])
    args = bytearray(data[4:])
    args[64:96] = (0xA1).to_bytes(32, "big")
    moved = data[:4] + bytes(args[:0xA0]) + b"\xee" + bytes(args[0xA0:])
    assert dec(reg, moved) == dec(reg, data) is not None


def test_offset_into_the_head_is_followed_like_solidity(reg: SwapRegistry) -> None:
    # path offset 0x20: the length word is amountOutMin (= 2) and the two elements are the head's
    # offset word (0x20, read as address 0x00..20) and the recipient word
    fn = V2_FUNCTIONS[SEL]
    head = [(10**18).to_bytes(32, "big"), (2).to_bytes(32, "big"), (0x20).to_bytes(32, "big"),
            bytes(12) + ME, (99).to_bytes(32, "big")]
    s = dec(reg, fn.selector + b"".join(head))
    assert s is not None
    assert s.path == ((0x20).to_bytes(20, "big"), ME) and s.amount_out_min == 2 and s.recipient == ME


# ------------------------------------------------------------------ malformed ABI -> not a swap


def _corrupt(data: bytes, word: int, value: int) -> bytes:
    args = bytearray(data[4:])
    args[32 * word:32 * word + 32] = value.to_bytes(32, "big")
    return data[:4] + bytes(args)


@pytest.mark.parametrize("offset", [0xA0 + 32 * 4, 2**64, 2**255, 2**256 - 1, 0xA0 + 32 * 3 + 1])
def test_offset_out_of_bounds(reg: SwapRegistry, offset: int) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    assert dec(reg, _corrupt(data, 2, offset)) is None


@pytest.mark.parametrize("length", [0, 1, 4, MAX_PATH_LEN + 1, 2**64, 2**256 - 1])
def test_absurd_or_inconsistent_path_length(reg: SwapRegistry, length: int) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])  # 3-token path: length word is word 5
    assert dec(reg, _corrupt(data, 5, length)) is None


def test_longest_allowed_path_decodes_and_one_more_does_not(reg: SwapRegistry) -> None:
    fn = V2_FUNCTIONS[SEL]
    path = [TOK[i % 2] for i in range(MAX_PATH_LEN)]
    assert dec(reg, build(fn, path=path)[0]) is not None
    assert dec(reg, build(fn, path=path + [TOK[2]])[0]) is None


@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_every_truncation_is_not_a_swap(reg: SwapRegistry, fn) -> None:
    data, value = build(fn)
    for cut in range(len(data)):
        assert dec(reg, data[:cut], value) is None, cut


@pytest.mark.parametrize("word", [5 + 1, 5 + 3, 3])  # the first path element, the last one, the recipient
def test_dirty_address_bits(reg: SwapRegistry, word: int) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    args = bytearray(data[4:])
    args[32 * word] = 0x01
    assert dec(reg, data[:4] + bytes(args)) is None


@pytest.mark.parametrize("path", [[TOK[0], bytes(20)], [bytes(20), TOK[0]], [TOK[0], TOK[0]],
                                  [TOK[0], TOK[1], TOK[1]]])
def test_path_the_library_would_reject(reg: SwapRegistry, path: list[bytes]) -> None:
    assert dec(reg, build(V2_FUNCTIONS[SEL], path=path)[0]) is None


def test_non_consecutive_repeat_is_a_valid_path(reg: SwapRegistry) -> None:
    assert dec(reg, build(V2_FUNCTIONS[SEL], path=[TOK[0], TOK[1], TOK[0]])[0]) is not None


@pytest.mark.parametrize("fn", [f for f in FNS if not f.eth_in], ids=[f.name for f in FNS if not f.eth_in])
def test_value_on_a_non_payable_function(reg: SwapRegistry, fn) -> None:
    data, _ = build(fn)
    assert dec(reg, data, 1) is None


@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_zero_exact_amount(reg: SwapRegistry, fn) -> None:
    data, value = build(fn, a=0)
    assert dec(reg, data, value) is None


@pytest.mark.parametrize("data", [b"", b"\x38", b"\x38\xed\x17", bytes.fromhex("deadbeef") + bytes(200),
                                  bytes.fromhex("414bf389") + bytes(256)])  # 414bf389: V3 exactInputSingle
def test_not_a_router02_swap_selector(reg: SwapRegistry, data: bytes) -> None:
    assert dec(reg, data) is None and dec(reg, data, to=None) is None


def test_path_beyond_the_calldata_window(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    w = _words(data)
    gap = (CALLDATA_WINDOW - 4 - 0xA0) // 32
    moved = data[:4] + b"".join(
        w[:2] + [(0xA0 + 32 * gap).to_bytes(32, "big")] + w[3:5] + [bytes(32)] * gap + w[5:])
    assert dec(reg, moved) is None
    # and one word earlier it still fits
    gap -= 4
    moved = data[:4] + b"".join(
        w[:2] + [(0xA0 + 32 * gap).to_bytes(32, "big")] + w[3:5] + [bytes(32)] * gap + w[5:])
    assert dec(reg, moved) == dec(reg, data)


# ------------------------------------------------------------------ routers and chains


def test_unconfigured_router_is_not_a_swap(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    assert dec(reg, data, to=b"\x42" * 20) is None


def test_router_on_the_wrong_chain_is_not_a_swap(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    assert dec(reg, data, chain=5) is None and dec(reg, data, chain=1) is not None


def test_without_to_any_selector_match_decodes(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    s = dec(reg, data, to=None)
    assert s is not None and s.router is None and s.venue is None


@pytest.mark.parametrize("fn", [f for f in FNS if f.eth_in or f.eth_out],
                         ids=[f.name for f in FNS if f.eth_in or f.eth_out])
def test_eth_variants_need_weth_at_the_eth_end(reg: SwapRegistry, fn) -> None:
    data, value = build(fn, path=[TOK[0], TOK[1]])
    assert dec(reg, data, value) is None  # known router: INVALID_PATH
    assert dec(reg, data, value, to=None) is not None  # router unknown: rule cannot apply


def test_sushiswap_router_maps_to_its_venue(reg: SwapRegistry) -> None:
    data, _ = build(V2_FUNCTIONS[SEL])
    sushi = DEFAULT_ROUTERS[1]
    s = dec(reg, data, to=sushi.address)
    assert s is not None and s.venue == sushi.venue != UNI.venue


def test_value_out_of_range_is_a_usage_error(reg: SwapRegistry) -> None:
    with pytest.raises(ValueError, match="value must be"):
        reg.decode(ROUTER, build(V2_FUNCTIONS[SEL])[0], 2**256, 1)


# ------------------------------------------------------------------ extensibility


class _ToyDecoder:
    """A stand-in for a future protocol (e.g. V3): one selector, amount = first word."""

    name = "toy_v3"
    SEL = bytes.fromhex("414bf389")

    def selectors(self) -> frozenset[bytes]:
        return frozenset({self.SEL})

    def decode(self, data: bytes, value: int, router: RouterConfig | None) -> SwapCall | None:
        if data[:4] != self.SEL or len(data) < 36:
            return None
        return SwapCall(self.SEL, "toy", SwapKind.EXACT_IN, (TOK[0], TOK[1]), ME, 0, False, False, False,
                        amount_in=int.from_bytes(data[4:36], "big"), amount_out_min=0,
                        router=router.address if router else None)


def test_a_further_decoder_plugs_in_per_router() -> None:
    r = SwapRegistry.with_defaults()
    r.add_decoder(_ToyDecoder())
    toy_router = b"\x99" * 20
    r.add_router(RouterConfig(1, toy_router, protocol="toy_v3"))
    data = _ToyDecoder.SEL + (77).to_bytes(32, "big")
    s = r.decode(toy_router, data, 0, 1)
    assert s is not None and s.amount_in == 77 and s.router == toy_router
    assert r.decode(ROUTER, data, 0, 1) is None  # the Router02 address still speaks only Router02
    assert r.decode(toy_router, build(V2_FUNCTIONS[SEL])[0], 0, 1) is None


def test_registry_rejects_unknown_protocol_and_duplicate_decoder() -> None:
    r = SwapRegistry.with_defaults()
    with pytest.raises(ValueError, match="protocol must be"):
        r.add_router(RouterConfig(1, b"\x98" * 20, protocol="nope"))
    with pytest.raises(ValueError, match="already registered"):
        r.add_decoder(_ToyDecoder()) or r.add_decoder(_ToyDecoder())


# ------------------------------------------------------------------ fuzz: anything we accept, eth-abi reads
# the same


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(data)
    for kind, pos, val in ops:
        if not b:
            break
        p = pos % len(b)
        if kind == 0:
            b[p] = val
        elif kind == 1:
            del b[p:]
        elif kind == 2:
            b[p:p] = bytes([val]) * (1 + val % 40)
        elif kind == 3:  # small word value at a word boundary (offsets, lengths)
            q = 4 + 32 * ((p - 4) // 32) if p >= 4 else 4
            b[q:q + 32] = (val % 300).to_bytes(32, "big")
    return bytes(b)


@given(fn=st.sampled_from(FNS), ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6),
                                                       st.integers(0, 255)), max_size=4),
       value=st.sampled_from([0, 1, 10**18]))
@settings(max_examples=600, deadline=None)
def test_fuzz_accepted_calls_agree_with_eth_abi(fn, ops, value: int) -> None:
    reg = SwapRegistry.with_defaults()
    data, v = build(fn)
    data = _mutate(data, ops)
    s = reg.decode(None, data, value or v, 1)
    if s is None:
        return
    f = V2_FUNCTIONS[s.selector]
    try:
        ref = abi_decode(types_for(f), data[4:])
    except InvalidPointer:
        # eth-abi refuses offsets into the head; Solidity (and we) follow them
        off = int.from_bytes(data[4 + 32 * f.path_index:4 + 32 * f.path_index + 32], "big")
        assert off < 32 * f.n_params
        return
    path = [bytes.fromhex(a[2:]) for a in ref[f.path_index]]
    assert list(s.path) == path
    assert s.recipient == bytes.fromhex(ref[f.path_index + 1][2:])
    assert s.deadline == ref[f.path_index + 2]
    if f.eth_in:
        assert (s.amount_out_min if f.kind is SwapKind.EXACT_IN else s.amount_out) == ref[0]
    else:
        assert (s.amount_in, s.amount_out_min) == (ref[0], ref[1]) if f.kind is SwapKind.EXACT_IN else \
            (s.amount_out, s.amount_in_max) == (ref[0], ref[1])


# ------------------------------------------------------------------ real mainnet transactions


def test_mainnet_block_router02_swaps_decode_like_eth_abi() -> None:
    """Block 18189758 (embedded): every Router02 swap decodes, with eth-abi's values; nothing else
    in the block (Universal Router, transfers, WETH, …) is taken for a swap."""
    from mevblade.control.engine.software.swap import decode_swap_tx
    from mevblade.control.engine.software.txdecode import decode_tx
    from mevblade.sim.data import mainnet_block

    found = 0
    for line in mainnet_block():
        raw = line["raw"] if isinstance(line["raw"], bytes) else bytes.fromhex(line["raw"][2:])
        tx = decode_tx(raw)
        assert tx.ok
        s = decode_swap_tx(tx)
        if tx.to == ROUTER and tx.data[:4] in V2_FUNCTIONS:
            assert s is not None
            found += 1
            f = V2_FUNCTIONS[tx.data[:4]]
            ref = abi_decode(types_for(f), tx.data[4:])
            assert [to_checksum_address(p) for p in s.path] == [to_checksum_address(a)
                                                                for a in ref[f.path_index]]
            assert (s.recipient, s.deadline) == (bytes.fromhex(ref[f.path_index + 1][2:]),
                                                 ref[f.path_index + 2])
            assert s.amount_in == (tx.value if f.eth_in else ref[0])
        else:
            assert s is None
    assert found == 9


# ------------------------------------------------------------------ engine seam and CLI


def test_software_engine_decode_swap_is_the_registry() -> None:
    data, value = build(V2_FUNCTIONS[bytes.fromhex("7ff36ab5")])
    with get_engine("sw") as eng:
        assert eng.decode_swap(ROUTER, data, value,
                               1) == SwapRegistry.with_defaults().decode(ROUTER, data, value, 1)


def _lines(*objs: object) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def test_cli_decode_swap_outputs_contract_or_null() -> None:
    rng = random.Random(3)
    inputs, expected = [], []
    reg = SwapRegistry.with_defaults()
    for fn in FNS:
        data, value = build(fn, a=rng.randint(1, 2**200), b=rng.randint(0, 2**200))
        inputs.append({"to": to_checksum_address(ROUTER), "data": "0x" + data.hex(), "value": str(value)})
        expected.append(swap_to_json(reg.decode(ROUTER, data, value, 1)))
    inputs.append({"data": "0x" + build(FNS[0])[0].hex()})  # no to, no value
    expected.append(swap_to_json(reg.decode(None, build(FNS[0])[0], 0, 1)))
    inputs.append({"to": "0x" + "42" * 20, "data": "0x" + build(FNS[0])[0].hex(), "value": "0"})
    expected.append(None)
    res = CliRunner().invoke(app, ["decode-swap", "-"], input=_lines(*inputs))
    assert res.exit_code == 0, res.output
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert got == expected and all(g is not None for g in got[:10])


@pytest.mark.parametrize("line",
                         ["not json", "[1,2]", '{"data": "0xzz"}', '{"data": "0x38ed1739", "value": "-1"}',
                                  '{"to": "0x1234", "data": "0x"}', '{"value": "1"}'])
def test_cli_decode_swap_bad_line_is_null_and_exit_1(line: str) -> None:
    res = CliRunner().invoke(app, ["decode-swap"], input=line + "\n" + json.dumps({"data": "0x00"}) + "\n")
    assert res.exit_code == 1
    assert res.stdout.splitlines() == ["null", "null"]


class _NoSwapEngine(Engine):
    name = "rtl"

    def decode(self, raw: bytes):  # pragma: no cover - never called here
        raise AssertionError


def test_cli_engine_without_the_method_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import mevblade.control.engine as eng_mod

    monkeypatch.setitem(eng_mod.BACKENDS, "rtl", f"{__name__}:_NoSwapEngine")
    data, _ = build(FNS[0])
    res = CliRunner().invoke(app, ["decode-swap", "--engine", "rtl"],
                             input=_lines({"data": "0x" + data.hex()}))
    assert res.exit_code == 2
    assert "no swap decoder" in res.stderr


_addr = st.binary(min_size=20, max_size=20).filter(lambda a: a != bytes(20))


@given(fn=st.sampled_from(FNS), a=st.integers(1, 2**256 - 1), b=st.integers(0, 2**256 - 1),
       deadline=st.integers(0, 2**256 - 1), to=st.binary(min_size=20, max_size=20),
       path=st.lists(_addr, min_size=2, max_size=MAX_PATH_LEN), tail=st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_round_trip_any_well_formed_call(fn, a: int, b: int, deadline: int, to: bytes, path: list[bytes],
                                         tail: bytes) -> None:
    """Any eth-abi-encoded call (plus trailing bytes) decodes to exactly its fields, unless the path
    repeats a token back to back (the library would revert)."""
    reg = SwapRegistry.with_defaults()
    data, value = build(fn, a=a, b=b, path=path, to=to, deadline=deadline)
    s = reg.decode(None, data + tail, value, 1)
    if any(x == y for x, y in zip(path, path[1:], strict=False)):
        assert s is None
        return
    assert s is not None and s.path == tuple(path) and s.recipient == to and s.deadline == deadline
    if fn.kind is SwapKind.EXACT_IN:
        assert (s.amount_in, s.amount_out_min) == (a, b)
    else:
        assert (s.amount_out, s.amount_in_max) == (a, b)
