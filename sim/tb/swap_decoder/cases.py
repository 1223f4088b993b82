"""Swap calldata cases for the swap-decoder tests: the nine Router02 functions built with eth-abi,
plus malformed and rule-breaking variants. Shared by the cocotb test and the Amaranth-sim test.

Expected results always come from the software decoder (``SwapRegistry.decode``), the
golden model, which its own tests check against eth-abi.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from eth_abi import encode

from mevblade.control.engine.simproc import pack_fields, unpack_fields
from mevblade.control.engine.software.swap import V2_FUNCTIONS, RouterConfig, SwapRegistry
from mevblade.control.engine.software.types_swap import SwapKind

__all__ = ["Case", "ROUTERS", "registry", "make_cases", "window_edge_cases", "expected", "WETH",
           "calldata_beats", "record_of", "unpack_record", "router_entry", "tx_info"]

WETH = bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
ROUTERS = (
    RouterConfig(1, bytes.fromhex("7a250d5630b4cf539739df2c5dacb4c659f2488d"), weth=WETH, venue=0),
    RouterConfig(1, bytes.fromhex("d9e1ce17f2641f24ae83637ab66a2cca9c378b9f"), weth=WETH, venue=1),
    RouterConfig(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
                 weth=bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512"), venue=2),
    RouterConfig(5, bytes.fromhex("1111111111111111111111111111111111111111"), weth=None, venue=3),
)


def registry() -> SwapRegistry:
    return SwapRegistry.with_defaults(ROUTERS)


@dataclass
class Case:
    name: str
    to: bytes | None
    data: bytes
    value: int
    chain_id: int = 1
    ok: bool = True


def _addr(rng: random.Random) -> bytes:
    return rng.randbytes(20)


def _swap(rng: random.Random, fn, router: RouterConfig, plen: int) -> tuple[bytes, int]:
    path = [_addr(rng) for _ in range(plen)]
    if fn.eth_in and router.weth:
        path[0] = router.weth
    if fn.eth_out and router.weth:
        path[-1] = router.weth
    amt = [rng.choice([1, rng.getrandbits(64), rng.getrandbits(112), rng.getrandbits(256)]) for _ in range(2)]
    to, deadline = _addr(rng), rng.getrandbits(rng.choice([32, 256]))
    if fn.eth_in:
        args = encode(["uint256", "address[]", "address", "uint256"], [amt[0], path, to, deadline])
        value = rng.getrandbits(rng.choice([1, 64, 256])) or 1
    else:
        args = encode(["uint256", "uint256", "address[]", "address", "uint256"],
                      [amt[0], amt[1], path, to, deadline])
        value = 0
    return fn.selector + args, value


def make_cases(seed: int = 1, per_function: int = 7) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    fns = list(V2_FUNCTIONS.values())
    for fn in fns:
        for k in range(per_function):
            r = rng.choice(ROUTERS)
            plen = 2 + (k % 7)          # 2..8 tokens
            data, value = _swap(rng, fn, r, plen)
            cases.append(Case(f"{fn.name}/len{plen}", r.address, data, value, r.chain_id))
    # ---- malformed / rule-breaking variants of a valid call --------------------------------
    base_fn = V2_FUNCTIONS[bytes.fromhex("38ed1739")]
    eth_fn = V2_FUNCTIONS[bytes.fromhex("7ff36ab5")]
    r0 = ROUTERS[0]
    good, _ = _swap(rng, base_fn, r0, 3)
    good_eth, v_eth = _swap(rng, eth_fn, r0, 2)

    def add(name: str, data: bytes, value: int = 0, to: bytes | None = r0.address, chain: int = 1,
            ok: bool = True) -> None:
        cases.append(Case(name, to, data, value, chain, ok))

    def word_set(data: bytes, byte_pos: int, word: int) -> bytes:
        b = bytearray(data)
        b[byte_pos:byte_pos + 32] = word.to_bytes(32, "big")
        return bytes(b)

    add("valid/base", good)
    add("valid/eth", good_eth, v_eth)
    for n in (0, 1, 3, 4, 5, 36, 100, 163, 164, 195, len(good) - 1):
        add(f"truncated/{n}", good[:n])
    add("trailing-bytes", good + rng.randbytes(45))
    add("not-a-swap-selector", bytes.fromhex("a9059cbb") + good[4:])
    add("value-on-nonpayable", good, 1)
    add("unknown-router", good, to=bytes(19) + b"\x01")
    add("no-to", good, to=None)
    add("wrong-chain", good, chain=5)
    add("chain-0-counts-as-1", good, chain=0)
    add("rejected-packet", good, ok=False)
    add("chain-2^64", good, chain=1 + (1 << 64))
    # path offset: head word 2 of a 5-param call is at byte 4 + 64
    for off in (0, 1, 31, 33, 64, 0x7FF, 1 << 64, len(good) - 4 - 31, len(good) - 4 - 32):
        add(f"path-offset/{off}", word_set(good, 4 + 64, off))
    # a valid call whose path array was moved to an unaligned place after the tail
    moved = bytearray(good)
    tail = good[4 + 160:]
    pad = rng.randint(1, 31)
    moved += bytes(pad) + tail
    moved = word_set(bytes(moved), 4 + 64, len(good) - 4 + pad)
    add("path-moved-unaligned", bytes(moved))
    # the offset pointing into the head (the head words are then read as length/elements)
    add("path-offset-into-head", word_set(good, 4 + 64, 32))
    # path length word (at args byte 160 for a 5-param call)
    for L in (0, 1, 9, 15, 16, 1 << 200):
        add(f"path-len/{L}", word_set(good, 4 + 160, L))
    add("path-len-exceeds-data", word_set(good, 4 + 160, 5))
    # dirty address bits / zero address / consecutive duplicates
    p0 = 4 + 192
    add("dirty-path-addr", word_set(good, p0, int.from_bytes(good[p0:p0 + 32], "big") | (1 << 200)))
    add("zero-path-addr", word_set(good, p0 + 32, 0))
    add("dup-consecutive", word_set(good, p0 + 32, int.from_bytes(good[p0:p0 + 32], "big")))
    add("dup-nonconsecutive-ok", word_set(good, p0 + 64, int.from_bytes(good[p0:p0 + 32], "big")))
    add("dirty-recipient", word_set(good, 4 + 96, (1 << 255) | 5))
    add("zero-amount-in", word_set(good, 4, 0))
    add("zero-amount-out-min-ok", word_set(good, 4 + 32, 0))
    add("eth-zero-value", good_eth, 0)
    add("eth-in-not-weth", word_set(good_eth, 4 + 128, 0xABCDEF))
    eth_out_fn = V2_FUNCTIONS[bytes.fromhex("18cbafe5")]
    d, v = _swap(rng, eth_out_fn, r0, 3)
    add("eth-out-weth-ok", d, v)
    add("eth-out-not-weth", word_set(d, 4 + 192 + 64, 0x1234))
    # router 3 has no WETH: the ETH path rule is skipped
    d, v = _swap(rng, eth_fn, ROUTERS[3], 2)
    add("no-weth-router", word_set(d, 4 + 128, 0x777), v, to=ROUTERS[3].address, chain=5)
    # beyond the 1024-byte window: path array placed late
    late = bytearray(good) + bytes(900) + good[4 + 160:]
    add("path-beyond-window", word_set(bytes(late), 4 + 64, len(good) - 4 + 900))
    late2 = bytearray(good) + bytes(500) + good[4 + 160:]
    add("path-inside-window-late", word_set(bytes(late2), 4 + 64, len(good) - 4 + 500))
    # random garbage after a real selector
    for i in range(10):
        sel = rng.choice(list(V2_FUNCTIONS))
        add(f"garbage/{i}", sel + rng.randbytes(rng.randrange(0, 400)), rng.choice([0, 1]))
    # random single-byte mutations of valid calls
    for i in range(24):
        d = bytearray(good if i % 2 else good_eth)
        pos = rng.randrange(len(d))
        d[pos] ^= 1 << rng.randrange(8)
        add(f"mutated/{i}", bytes(d), 0 if i % 2 else v_eth)
    return cases


def window_edge_cases(seed: int = 7) -> list[Case]:
    """Paths at the end of the 1,024-byte window (1,020 argument bytes) and at every byte shift.

    For 2, 3 and 8 tokens: the last element ending exactly at the window's last byte (a swap,
    with the calldata ending there or continuing past the window), one byte later (not a
    swap), a few bytes earlier (other byte shifts near the end) and at the last aligned place
    (its last element is word 30, so the walk's pair reads word 31 as its unused half). Then
    one path at each byte shift 0..31 of the offset in the middle of the calldata.
    """
    rng = random.Random(seed)
    fn = V2_FUNCTIONS[bytes.fromhex("38ed1739")]
    r0 = ROUTERS[0]
    window_args = 1020
    cases: list[Case] = []

    def placed(plen: int, off: int, total_args: int, name: str) -> None:
        good, _ = _swap(rng, fn, r0, plen)
        assert off >= 160, "the path must lie after the five head words"
        tail = good[4 + 160:]                                    # length word + elements
        args = bytearray(good[4:4 + 160]) + rng.randbytes(off - 160) + tail
        args += rng.randbytes(max(0, total_args - len(args)))
        args[64:96] = off.to_bytes(32, "big")                    # head word 2: the path offset
        cases.append(Case(name, r0.address, good[:4] + bytes(args), 0, 1))

    for plen in (2, 3, 8):
        end = window_args - 32 * (plen + 1)          # the last element ends at byte 1020
        placed(plen, end, window_args, f"window-end/len{plen}/exact")
        placed(plen, end, window_args + 200, f"window-end/len{plen}/exact+more")
        placed(plen, end + 1, window_args + 200, f"window-end/len{plen}/one-past")
        for back in (1, 13, 27):
            placed(plen, end - back, window_args + 8, f"window-end/len{plen}/back{back}")
        placed(plen, end - end % 32, window_args + 40, f"window-end/len{plen}/aligned")
    for shift in range(32):
        placed(2 + shift % 7, 160 + 32 * (shift % 3) + shift, 700, f"shift/{shift}")
    return cases


def expected(reg: SwapRegistry, c: Case):
    """The software result the gateware must equal. The gateware sits behind the transaction
    decoder and only ever decodes calls *to a configured router*: a packet the decoder
    rejected, or a contract creation (no ``to``), is not a swap there. (The software's
    ``to=None`` mode, which tries every decoder without router rules, is a CLI convenience.)"""
    if not c.ok or c.to is None:
        return None
    return reg.decode(c.to, c.data, c.value, c.chain_id or 1)


def swap_kind_exact_out(swap) -> bool:
    return swap.kind is SwapKind.EXACT_OUT


def calldata_beats(data: bytes, closing_beat: bool = False) -> list[tuple[int, int, int, int, bool]]:
    """The ``CalldataWord`` beats the transaction decoder emits for ``data``:
    ``(data, nbytes, kind, index, last)``, kind 0 = SELECTOR, 1 = ARG, bytes left-aligned.

    A calldata that ends on a word boundary closes either on that word or (``closing_beat``)
    with an extra ``nbytes == 0`` beat; the aligner produces both forms.
    """
    beats: list[list] = []
    sel = data[:4]
    beats.append([int.from_bytes(sel.ljust(32, b"\0"), "big"), len(sel), 0, 0, False])
    args = data[4:]
    for k in range(0, len(args), 32):
        chunk = args[k:k + 32]
        beats.append([int.from_bytes(chunk.ljust(32, b"\0"), "big"), len(chunk), 1, k // 32, False])
    full = len(data) >= 4 and len(args) % 32 == 0
    if full and closing_beat:
        beats.append([0, 0, 1, len(args) // 32, False])
    beats[-1][4] = True
    return [tuple(b) for b in beats]  # type: ignore[misc]


def record_of(swap, routers=ROUTERS) -> dict[str, int]:
    """The ``SwapRecord`` fields the gateware must produce for a software result."""
    from mevblade.hw.swap_decoder import SWAP_FUNCTIONS

    if swap is None:
        return {"is_swap": 0}
    fn = [f.selector for f in SWAP_FUNCTIONS].index(swap.selector)
    exact_out = swap.kind is SwapKind.EXACT_OUT
    router = [r.address for r in routers].index(swap.router)
    rec = {
        "is_swap": 1, "fn": fn, "exact_out": int(exact_out), "eth_in": int(swap.eth_in),
        "eth_out": int(swap.eth_out), "fee_on_transfer": int(swap.fee_on_transfer), "router": router,
        "path_len": len(swap.path),
        "amount_in": swap.amount_in_max if exact_out else swap.amount_in,
        "amount_out": swap.amount_out if exact_out else swap.amount_out_min,
        "recipient": int.from_bytes(swap.recipient, "big"), "deadline": swap.deadline,
    }
    for i in range(8):
        rec[f"path{i}"] = int.from_bytes(swap.path[i], "big") if i < len(swap.path) else 0
    return rec


def unpack_record(word: int) -> dict[str, int]:
    """Split a packed ``SwapRecord`` (bit 0 = LSB) into the fields of :func:`record_of`."""
    from mevblade.hw.swap_decoder import SwapRecord

    out: dict[str, int] = {}
    for name, v in unpack_fields(SwapRecord, word).items():
        if name == "path":
            for i in range(8):
                out[f"path{i}"] = (v >> (160 * i)) & ((1 << 160) - 1)
        else:
            out[name] = v
    if not out["is_swap"]:
        return {"is_swap": 0, **{k: v for k, v in out.items() if v and k != "is_swap"}}
    return out


def router_entry(r: RouterConfig) -> int:
    """A ``RouterEntry`` packed as an integer (what the host writes)."""
    from mevblade.hw.swap_decoder import RouterEntry

    vals = {"valid": 1, "chain_id": r.chain_id, "address": int.from_bytes(r.address, "big"),
            "weth_valid": int(r.weth is not None), "weth": int.from_bytes(r.weth or bytes(20), "big")}
    return pack_fields(RouterEntry, vals)


def tx_info(c: Case) -> int:
    """A ``SwapTxInfo`` packed as an integer."""
    from mevblade.hw.swap_decoder import SwapTxInfo

    vals = {"ok": int(c.ok), "to_present": int(c.to is not None),
            "to": int.from_bytes(c.to, "big") if c.to is not None else 0,
            "value": c.value, "chain_id": c.chain_id}
    return pack_fields(SwapTxInfo, vals)
